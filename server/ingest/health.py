"""Live ingest measurements for one publisher: bitrate, frame rate, keyframe interval.

The meter updated per read and per frame is ``IngestMeter`` (``server.ingest.meter``,
compiled); this module shapes its figures for health.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from server.ingest.meter import WINDOW_SECONDS as WINDOW_SECONDS
from server.ingest.meter import IngestMeter as IngestMeter
from server.media.frame import CodecConfig

if TYPE_CHECKING:
    from server.protocols.srt import SrtStats


@dataclass(frozen=True, slots=True)
class VideoFigures:
    """The video track as the encoder sends it: configured size, measured rate."""

    codec: str
    width: int
    height: int
    fps: float | None
    keyframe_interval: float | None
    """Seconds between the last two keyframes."""


@dataclass(frozen=True, slots=True)
class AudioFigures:
    codec: str
    sample_rate: int
    channels: int


@dataclass(frozen=True, slots=True)
class SrtLinkFigures:
    """SRT link health. ``loss_rate`` is the share of first transmissions that never
    arrived (each lost sequence number is counted once, whether ARQ recovered it or
    not): what the network does, while ``packets_dropped`` is what the viewer lost."""

    rtt_ms: float
    latency_ms: int
    encrypted: bool
    key_length: int
    loss_rate: float
    packets_received: int
    packets_lost: int
    packets_retransmitted: int
    packets_dropped: int

    @classmethod
    def of(cls, stats: SrtStats) -> SrtLinkFigures:
        received, lost = stats.packets_received, stats.packets_lost
        first_sent = received - stats.packets_retransmitted_received + lost
        return cls(
            rtt_ms=round(stats.rtt_ms, 3),
            latency_ms=stats.latency_ms,
            encrypted=stats.encrypted,
            key_length=stats.key_length,
            loss_rate=round(lost / first_sent, 6) if first_sent > 0 else 0.0,
            packets_received=received,
            packets_lost=lost,
            packets_retransmitted=stats.packets_retransmitted_received,
            packets_dropped=stats.packets_dropped,
        )


@dataclass(frozen=True, slots=True)
class EncoderHealth:
    """One stream's ingest as the media plane knows it; the API names and shapes it.

    While the encoder is away inside the reconnect window these are the last figures
    it had, ``encoder_connected`` is false and ``encoder_left_at`` says since when.
    """

    protocol: str
    remote_address: str
    connected_at: datetime
    encoder_connected: bool
    encoder_left_at: datetime | None
    session_id: str
    bitrate: int
    bytes_in: int
    video: VideoFigures | None
    audio: AudioFigures | None
    frames_dropped: int
    srt: SrtLinkFigures | None = None


def video_figures(config: CodecConfig | None, meter: IngestMeter) -> VideoFigures | None:
    if config is None:
        return None
    return VideoFigures(
        codec=str(config.codec),
        width=config.width,
        height=config.height,
        fps=meter.fps() or config.fps,
        keyframe_interval=meter.keyframe_interval,
    )


def audio_figures(config: CodecConfig | None) -> AudioFigures | None:
    if config is None:
        return None
    return AudioFigures(str(config.codec), config.sample_rate, config.channels)


@runtime_checkable
class ReportsLinkHealth(Protocol):
    """A publisher whose transport has its own figures (SRT): part of the health."""

    def link_health(self) -> SrtLinkFigures | None: ...
