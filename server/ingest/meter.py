"""The per-publisher meter: bitrate, frame rate and keyframe interval, updated per read
and per frame.

Split from ``health`` to be compiled with mypyc (``server/accel_modules.txt``, issue
20): ``add_bytes`` runs on every read and ``add_frame`` on every access unit of every
publisher, and the compiled ingest path calls them natively. This source stays the
pure-Python reference; ``health`` re-exports the class.

Pure bookkeeping with the time passed in, so tests can drive it without a clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final

from server.media.frame import TIMEBASE, Frame, TrackKind

WINDOW_SECONDS = 5.0
_VIDEO: Final = TrackKind.VIDEO
"""Compiled, a Final constant is a C static; ``TrackKind.VIDEO`` read in ``add_frame``
would be a class attribute lookup per frame (the enum lives in interpreted code)."""


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
        if frame.track is not _VIDEO:
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
