"""What the media plane needs from persistent state, declared here, implemented by the store.

The media plane never imports the control plane: the composition root hands it an
object that satisfies ``StreamDirectory``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from server.bus import Stream, StreamGrant


@dataclass(frozen=True, slots=True)
class IngestRefusal:
    """One refused publish, kept so an operator can answer "why is my encoder refused?".

    ``attempted`` is what arrived (RTMP ``app/name`` or the SRT streamid) with the key
    already masked by :func:`mask_key`: refusals are shown to people, keys never are.
    ``environment_id``/``stream_id`` are set when the refusal can be tied to a stream.
    """

    at: datetime
    protocol: str
    remote: str
    attempted: str
    reason: str
    detail: str
    environment_id: str | None = None
    stream_id: str | None = None


class RefusalSink(Protocol):
    """Where refusals go (diagnostics log, metrics); must not block or raise."""

    def refused(self, refusal: IngestRefusal) -> None: ...


def mask_key(key: str) -> str:
    """The first 4 characters and a fixed tail: enough to recognise, never to use."""
    return f"{key[:4]}****" if key else ""


class StreamDirectory(Protocol):
    async def authorize(self, stream_key: str) -> StreamGrant | None:
        """Hash lookup of a stream key; None when no stream has it."""

    async def session_opened(self, stream_id: str, protocol: str, remote: str, at: datetime) -> str:
        """Record a new session, mark the stream ``connecting``; return the session id."""

    async def stream_live(self, stream_id: str, at: datetime) -> None:
        """First media arrived: the stream is ``live`` from ``at``."""

    async def session_closed(
        self, stream_id: str, session_id: str, at: datetime, bytes_in: int, error: str | None
    ) -> None:
        """The session is over: close it; the stream is ``ended``, or ``error`` with a reason."""


class StreamObserver(Protocol):
    """Outputs (HLS, later push and record) that start with each new session's bus stream."""

    def stream_opened(self, grant: StreamGrant, stream: Stream, session_id: str) -> None: ...


class Publisher(Protocol):
    """One connected encoder, whatever its protocol."""

    protocol: str
    remote: str

    def close(self, reason: str) -> None:
        """Disconnect now (takeover, stop, forced key rotation); idempotent."""


class Fallback(Protocol):
    """What publishes a stream when its encoder leaves (a channel's queue)."""

    def publisher_left(self) -> None:
        """The encoder that took over is gone: publish again, in the same session."""


class PublisherClaims(Protocol):
    """One publisher per stream beyond this process: several nodes share the streams.

    Asked before a stream's session opens here; released when it ends. A single
    process needs nothing more than its own table of live streams (``SoleNode``).
    """

    async def take(self, stream_id: str) -> bool:
        """True when this node may open the stream; False when another node holds it."""

    def release(self, stream_id: str) -> None:
        """The stream's session here is over; must not block or raise."""

    async def elsewhere(self, stream_ids: Collection[str]) -> set[str]:
        """Those of ``stream_ids`` another live node holds (a channel playing there)."""


class SoleNode:
    """The claims of a process that is the whole installation: always granted."""

    async def take(self, stream_id: str) -> bool:
        return True

    def release(self, stream_id: str) -> None:
        return None

    async def elsewhere(self, stream_ids: Collection[str]) -> set[str]:
        return set()
