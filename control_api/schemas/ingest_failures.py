"""Refused publishes and players, as ``GET /v1/ingest/failures`` shows them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from control_api.schemas.common import ApiModel, Timestamp

Reason = Literal[
    "unknown-key",
    "stream-stopped",
    "key-in-use",
    "wrong-app",
    "bad-passphrase",
    "limits",
    "protocol-error",
    "stream-not-live",
    "playback-token",
    "max-clients",
    "codec-unsupported",
]
"""``server.ingest.refusals.RefusalReason``'s values (a unit test keeps them equal)."""


class IngestFailureOut(ApiModel):
    at: Timestamp
    protocol: str = Field(description="rtmp, rtmps or srt.")
    remote_address: str
    attempted: str = Field(
        description="What arrived: RTMP app/name or the SRT streamid, the key masked to "
        "its first 4 characters."
    )
    reason: Reason
    detail: str
    stream_id: str | None = Field(None, description="Set when the refusal names a stream.")


class IngestFailureList(ApiModel):
    failures: list[IngestFailureOut]
    total: int
