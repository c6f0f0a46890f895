"""Real-time pacing of encoded frames: when each may go onto the bus.

The worker runs ahead; the event loop publishes a frame when the wall clock reaches
its timestamp. The clock is anchored at the first frame; a worker that falls behind
(a slow decode, a worker restart) is caught up by re-anchoring instead of bursting
late frames out, counted as an underrun.
"""

from __future__ import annotations

from server.media.frame import TIMEBASE

LEAD = 0.05
"""Seconds a frame may go out before its time: one wake-up publishes every frame due
within this much, so a channel wakes about 1 / LEAD times a second, not once per frame
(video and audio frames all have their own times)."""

LATE = 0.5
"""Seconds behind after which the clock is re-anchored (an underrun)."""


class Pacer:
    def __init__(self) -> None:
        self._anchor: tuple[float, int] | None = None
        self.underruns = 0

    def wait(self, pts: int, now: float) -> float:
        """Seconds to wait before the frame at ``pts`` may be published (0: now).

        A frame due within ``LEAD`` goes now. A later one is waited for until its own
        time (not until ``LEAD`` before it): the wake-up then takes it and the frames of
        the next ``LEAD`` seconds together."""
        if self._anchor is None:
            self._anchor = (now, pts)
            return 0.0
        t0, p0 = self._anchor
        due = t0 + (pts - p0) / TIMEBASE
        if due < now - LATE:
            self.underruns += 1
            self._anchor = (now, pts)
            return 0.0
        return 0.0 if due <= now + LEAD else due - now

    def reset(self) -> None:
        """A new stretch of output (after a takeover): anchor at its first frame."""
        self._anchor = None
