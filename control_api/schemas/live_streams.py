"""Live streams, their ingest and playback URLs, and sessions."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from control_api.schemas.common import ApiModel, PageQuery, QueryModel, RequestModel, Timestamp

State = Literal["idle", "connecting", "live", "ended", "error"]
Quality = Literal["passthrough", "standard", "high"]
PlaybackPolicy = Literal["public", "private"]
Name = Field(min_length=1, max_length=200)
Window = Field(ge=0, le=3600, description="Seconds a dropped encoder may take to come back.")


class StreamCreate(RequestModel):
    name: str = Name
    quality: Quality = "passthrough"
    low_latency: bool = True
    recording: bool = False
    reconnect_window_seconds: int = Field(60, ge=0, le=3600)
    playback_policy: PlaybackPolicy = "public"
    srt_passphrase: str | SkipJsonSchema[None] = Field(
        None, min_length=10, max_length=79, description="Write-only SRT AES passphrase."
    )
    plan: str | SkipJsonSchema[None] = Field(None, min_length=1, max_length=32)
    region: str | SkipJsonSchema[None] = Field(None, min_length=1, max_length=32)


class StreamPatch(RequestModel):
    name: str | SkipJsonSchema[None] = Field(None, min_length=1, max_length=200)
    quality: Quality | SkipJsonSchema[None] = None
    low_latency: bool | SkipJsonSchema[None] = None
    recording: bool | SkipJsonSchema[None] = None
    reconnect_window_seconds: int | SkipJsonSchema[None] = Field(None, ge=0, le=3600)
    playback_policy: PlaybackPolicy | SkipJsonSchema[None] = None


class Ingest(ApiModel):
    rtmp_url: str
    rtmps_url: str | None = None
    srt_url: str
    stream_key: str | None = None
    rtmp_full_url: str | None = None
    srt_full_url: str | None = None


class Playback(ApiModel):
    hls_url: str
    edge_id: str


class StreamOut(ApiModel):
    stream_id: str
    edge_id: str
    name: str
    state: State
    quality: Quality
    low_latency: bool
    recording: bool
    reconnect_window_seconds: int
    playback_policy: PlaybackPolicy
    plan: str
    region: str
    enabled: bool
    created_at: Timestamp
    started_at: Timestamp | None = None
    ended_at: Timestamp | None = None
    error_reason: str | None = None
    ingest: Ingest
    playback: Playback


class StreamList(ApiModel):
    streams: list[StreamOut]
    total: int


class RotateQuery(QueryModel):
    force: bool = Field(False, description="Rotate even while live, disconnecting the encoder.")


class RotatedKey(ApiModel):
    stream_key: str
    rtmp_full_url: str
    srt_full_url: str
    rtmps_full_url: str | None = None


class SessionOut(ApiModel):
    session_id: str
    stream_id: str
    protocol: str
    remote_address: str | None = None
    started_at: Timestamp
    ended_at: Timestamp | None = None
    duration_seconds: float | None = None
    bytes_in: int
    recording_media_id: str | None = None


class SessionList(ApiModel):
    sessions: list[SessionOut]
    total: int


class StreamHealth(ApiModel):
    stream_id: str
    state: State
    ingest: dict[str, object] | None = Field(
        None, description="Current ingest connection; absent when no publisher is connected."
    )


__all__ = ["PageQuery"]
