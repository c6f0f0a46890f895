"""Measured bitrate and frame rate of a rendition over a sliding window of media time."""

from __future__ import annotations

from collections import deque

from server.media.frame import TIMEBASE

WINDOW_TICKS = 4 * TIMEBASE
"""Four seconds of media: a couple of GOPs, so a keyframe's size is averaged out."""


class RateMeter:
    """Video frames of one rendition, by pts; O(1) amortised per frame."""

    __slots__ = ("_bytes", "_frames")

    def __init__(self) -> None:
        self._frames: deque[tuple[int, int]] = deque()  # (pts, bytes)
        self._bytes = 0

    def add(self, pts: int, size: int) -> None:
        frames = self._frames
        frames.append((pts, size))
        self._bytes += size
        while frames and pts - frames[0][0] > WINDOW_TICKS:
            self._bytes -= frames.popleft()[1]

    def _span(self) -> float:
        frames = self._frames
        if len(frames) < 2:
            return 0.0
        return (frames[-1][0] - frames[0][0]) / TIMEBASE

    @property
    def bitrate(self) -> int:
        """Bits per second over the window (0 until two frames)."""
        span = self._span()
        return round((self._bytes - self._frames[-1][1]) * 8 / span) if span > 0 else 0

    @property
    def fps(self) -> float:
        """Frames per second over the window (0 until two frames)."""
        span = self._span()
        return round((len(self._frames) - 1) / span, 2) if span > 0 else 0.0
