"""Live streams, their ingest and playback URLs, and sessions."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints
from pydantic.json_schema import SkipJsonSchema

from control_api.schemas.channels import ProfileIn, ProfileOut, Repeat, ScheduleTime, Source
from control_api.schemas.clearable import ClearableRequest
from control_api.schemas.common import (
    ApiModel,
    IntegralFloat,
    PageQuery,
    QueryModel,
    RequestModel,
    Timestamp,
)

State = Literal["idle", "connecting", "live", "ended", "error"]
Quality = Literal["passthrough", "standard", "high"]
PlaybackPolicy = Literal["public", "private"]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
WindowSeconds = Annotated[
    int,
    Field(ge=0, le=3600, description="Seconds a dropped encoder may take to come back."),
    IntegralFloat,
]
Passphrase = Annotated[
    str,
    StringConstraints(min_length=10, max_length=79),
    Field(description="Write-only SRT AES passphrase (10-79 characters)."),
]
Label = Annotated[str, StringConstraints(min_length=1, max_length=32)]


class StreamCreate(RequestModel):
    name: Name
    quality: Quality = "passthrough"
    low_latency: bool = True
    recording: bool = False
    reconnect_window_seconds: WindowSeconds = 60
    playback_policy: PlaybackPolicy = "public"
    srt_passphrase: Passphrase | SkipJsonSchema[None] = None
    plan: Label | SkipJsonSchema[None] = None
    region: Label | SkipJsonSchema[None] = None
    source: Source = Field("encoder", description='"queue" makes the stream a 24/7 channel.')
    loop: bool = False
    scheduled_start: ScheduleTime | SkipJsonSchema[None] = None
    scheduled_end: ScheduleTime | SkipJsonSchema[None] = None
    schedule_repeat: Repeat = "none"
    profile: ProfileIn | SkipJsonSchema[None] = None


class StreamPatch(ClearableRequest):
    clearable: ClassVar[frozenset[str]] = frozenset({"scheduledStart", "scheduledEnd"})

    name: Name | SkipJsonSchema[None] = None
    quality: Quality | SkipJsonSchema[None] = None
    low_latency: bool | SkipJsonSchema[None] = None
    recording: bool | SkipJsonSchema[None] = None
    reconnect_window_seconds: WindowSeconds | SkipJsonSchema[None] = None
    playback_policy: PlaybackPolicy | SkipJsonSchema[None] = None
    loop: bool | SkipJsonSchema[None] = None
    scheduled_start: ScheduleTime | None = Field(None, description="null: no start time.")
    scheduled_end: ScheduleTime | None = Field(None, description="null: no end time.")
    schedule_repeat: Repeat | SkipJsonSchema[None] = None


class Ingest(ApiModel):
    rtmp_url: str
    rtmps_url: str | None = None
    srt_url: str
    whip_url: str = Field(
        description='WHIP ingest (OBS 30+ "Server", the studio\'s Go live): POST an SDP '
        "offer with the stream key as Bearer token."
    )
    stream_key: str | None = None
    rtmp_full_url: str | None = None
    srt_full_url: str | None = None


class Playback(ApiModel):
    hls_url: str
    edge_id: str
    rtmp_url: str = Field(
        description="RTMP playback (ffplay, VLC, ffmpeg); private streams add `?token=T`."
    )
    srt_url: str = Field(
        description="SRT playback (MPEG-TS, the stream's passphrase if it has one); "
        "private streams add `,s=T` to the streamid."
    )
    whep_url: str = Field(
        description="WHEP playback (WebRTC, H.264; Opus when published over WHIP): POST an "
        "SDP offer; private streams add `?token=T`."
    )


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
    source: Source = "encoder"
    loop: bool | None = None
    scheduled_start: Timestamp | None = None
    scheduled_end: Timestamp | None = None
    schedule_repeat: Repeat | None = None
    profile: ProfileOut | None = None
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
    peak_viewers: int = Field(0, description="Most concurrent viewers, HLS, RTMP and SRT.")
    viewer_seconds: float = Field(0.0, description="Seconds watched, all viewers together.")


class CurrentViewers(ApiModel):
    hls: int
    rtmp: int
    srt: int
    webrtc: int = Field(0, description="WHEP (WebRTC) viewers.")
    total: int


class Viewership(ApiModel):
    current: CurrentViewers
    peak_viewers: int = Field(description="Most concurrent viewers of the latest session.")
    total_views: int = Field(description="Players and HLS viewers that started watching.")
    viewer_seconds: float


class SessionList(ApiModel):
    sessions: list[SessionOut]
    total: int


class VideoHealth(ApiModel):
    codec: str
    width: int
    height: int
    fps: float | None = None
    keyframe_interval: float | None = Field(None, description="Seconds between keyframes.")


class AudioHealth(ApiModel):
    codec: str
    sample_rate: int
    channels: int


class SrtHealth(ApiModel):
    rtt_ms: float = Field(description="Smoothed round-trip time (ACK/ACKACK), milliseconds.")
    latency_ms: int = Field(description="Negotiated receive latency (TSBPD), milliseconds.")
    encrypted: bool
    key_length: int = Field(description="AES key length in bytes (16, 24, 32); 0 when clear.")
    loss_rate: float = Field(description="Share of packets lost on the path (before ARQ).")
    packets_received: int
    packets_lost: int = Field(description="Packets detected missing (most are recovered).")
    packets_retransmitted: int = Field(description="Retransmissions received.")
    packets_dropped: int = Field(description="Packets never recovered in time (unrecovered).")


class IngestHealth(ApiModel):
    protocol: Literal["rtmp", "rtmps", "srt", "whip", "playout"] = Field(
        description="How the media arrives; `playout` for a channel playing its queue."
    )
    remote_address: str
    connected_at: Timestamp
    encoder_connected: bool = Field(
        description="False while the encoder is away inside the reconnect window: the "
        "other figures are then the last it had."
    )
    encoder_left_at: Timestamp | None = Field(
        None, description="When the encoder dropped (only while encoderConnected is false)."
    )
    session_id: str
    bitrate: int = Field(
        description="Bits per second received over the last 5 s (before it left, when away)."
    )
    bytes_in: int
    video: VideoHealth | None = None
    audio: AudioHealth | None = None
    frames_dropped: int = Field(description="Frames the bus dropped for slow readers.")
    srt: SrtHealth | None = Field(None, description="SRT link figures (SRT publishers only).")


class RenditionHealth(ApiModel):
    name: str = Field(description='The rung ("720p", ...), as a destination\'s rendition names it.')
    width: int
    height: int
    bitrate: int = Field(description="Video bits per second measured over the last 4 s.")
    fps: float = Field(description="Frames per second measured over the last 4 s.")
    lag_ms: int = Field(description="How far the rendition is behind the source, milliseconds.")
    dropped_frames: int = Field(
        description="Source frames the transcoder lost while behind (to the next keyframe)."
    )


class StreamHealth(ApiModel):
    stream_id: str
    state: State
    ingest: IngestHealth | None = Field(
        None,
        description="The session's ingest: the connected encoder, or the last one while "
        "it is away inside the reconnect window; absent when no session is open.",
    )
    warnings: list[str] | None = Field(
        None,
        description="What went wrong with outputs of the current or last session (a "
        "recording stopped by a full disk, not started for lack of space); ingest goes on.",
    )
    renditions: list[RenditionHealth] | None = Field(
        None,
        description="The transcoded renditions of the session (quality standard or high), "
        "tallest first; absent for passthrough or when transcoding fell back to the source.",
    )


__all__ = ["PageQuery"]


class PlaybackTokenCreate(RequestModel):
    expires_in_seconds: Annotated[
        int,
        Field(ge=60, le=7 * 86_400, description="Lifetime of the token (60 s to 7 days)."),
        IntegralFloat,
    ] = 3600


class PlaybackToken(ApiModel):
    token: str = Field(description="Append as ?token= to the stream's HLS URL.")
    expires_at: Timestamp
