"""Running estimates of the main track that the cutting rules need (pure, per stream).

The frame duration is a window average rather than the last delta because RTMP carries
millisecond timestamps: at 30 fps the deltas alternate 33/34/33 ms, but any 30 of them
add up to exactly one second, so the average is exact while single deltas are not.
"""

from __future__ import annotations

from collections import deque

from server.media.frame import TICKS_PER_MS

_WINDOW = 30
_MS_TOLERANCE = TICKS_PER_MS // 2


class FrameClock:
    """Frame duration, GOP length and timestamp granularity of the main track."""

    __slots__ = ("_expected", "_last_key", "_quantized", "_recent", "gop")

    def __init__(self, expected: float) -> None:
        self._expected = expected
        self._recent: deque[int] = deque(maxlen=_WINDOW + 1)
        self._quantized = True
        self._last_key: int | None = None
        self.gop = 0

    def reset(self, expected: float | None = None) -> None:
        """Forget the history (after a break); ``expected`` replaces the prior guess."""
        if expected is not None:
            self._expected = expected
        self._recent.clear()
        self._quantized = True
        self._last_key = None
        self.gop = 0

    @property
    def last(self) -> int | None:
        """Raw dts of the last observed frame."""
        return self._recent[-1] if self._recent else None

    @property
    def measured(self) -> bool:
        return len(self._recent) > 1

    @property
    def frame(self) -> float:
        """Average frame duration in ticks over the recent window (or the prior guess)."""
        recent = self._recent
        if len(recent) < 2:
            return self._expected
        return (recent[-1] - recent[0]) / (len(recent) - 1)

    @property
    def tolerance(self) -> int:
        """Ticks of slack when comparing durations: half a millisecond when timestamps are
        millisecond-rounded (RTMP), so rounding alone never moves a cut; else none."""
        return _MS_TOLERANCE if self._quantized and len(self._recent) > 1 else 0

    def observe(self, dts: int, keyframe: bool) -> None:
        """Record one main-track frame (decode order, dts increasing)."""
        if self._recent and dts <= self._recent[-1]:
            return
        self._recent.append(dts)
        self._quantized = self._quantized and dts % TICKS_PER_MS == 0
        if keyframe:
            if self._last_key is not None:
                self.gop = dts - self._last_key
            self._last_key = dts
