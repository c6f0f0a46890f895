"""Live ingest measurements for one publisher: bitrate, frame rate, keyframe interval.

Pure bookkeeping with the time passed in, so tests can drive it without a clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from server.media.frame import TIMEBASE, CodecConfig, Frame, TrackKind

if TYPE_CHECKING:
    from server.protocols.srt import SrtStats

WINDOW_SECONDS = 5.0


@dataclass(slots=True)
class IngestMeter:
    """Counts what one publisher delivered; cheap enough to update per frame."""

    window: float = WINDOW_SECONDS
    bytes_in: int = 0
    video_frames: int = 0
    last_activity: float = 0.0
    _bytes: deque[tuple[float, int]] | None = None
    _video_dts: deque[int] | None = None
    _last_key_dts: int | None = None
    keyframe_interval: float | None = None

    def __post_init__(self) -> None:
        self._bytes = deque()
        self._video_dts = deque(maxlen=121)

    def add_bytes(self, count: int, now: float) -> None:
        assert self._bytes is not None
        self.bytes_in += count
        self.last_activity = now
        if self._bytes and now - self._bytes[-1][0] < 0.25:  # bucket per quarter second
            t, n = self._bytes[-1]
            self._bytes[-1] = (t, n + count)
        else:
            self._bytes.append((now, count))
        while self._bytes and now - self._bytes[0][0] > self.window:
            self._bytes.popleft()

    def add_frame(self, frame: Frame) -> None:
        if frame.track is not TrackKind.VIDEO:
            return
        assert self._video_dts is not None
        self.video_frames += 1
        self._video_dts.append(frame.dts)
        if frame.keyframe:
            if self._last_key_dts is not None and frame.dts > self._last_key_dts:
                self.keyframe_interval = (frame.dts - self._last_key_dts) / TIMEBASE
            self._last_key_dts = frame.dts

    def bitrate(self, now: float) -> int:
        """Bits per second over the last window (what arrived on the wire)."""
        assert self._bytes is not None
        recent = [(t, n) for t, n in self._bytes if now - t <= self.window]
        if not recent:
            return 0
        span = max(now - recent[0][0], 1.0)
        return int(sum(n for _, n in recent) * 8 / span)

    def fps(self) -> float | None:
        assert self._video_dts is not None
        if len(self._video_dts) < 2:
            return None
        span = self._video_dts[-1] - self._video_dts[0]
        return round((len(self._video_dts) - 1) * TIMEBASE / span, 2) if span > 0 else None


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
