"""Output timestamps for one push connection.

Destinations expect timestamps that start near zero and never go back, per track.
The bus gives the publisher's own clock, which starts anywhere and restarts when an
encoder comes back inside the reconnect window. A :class:`Timeline` rebases the
first frame of a connection to zero and, after a discontinuity, continues one
frame-gap after the last timestamp sent, so the destination sees one continuous
stream across encoder reconnects.
"""

from __future__ import annotations

from server.media.frame import TICKS_PER_MS, Frame, TrackKind

RESUME_GAP = 20 * TICKS_PER_MS
"""Ticks between the last frame before a discontinuity and the first after it."""


class Timeline:
    __slots__ = ("_jump", "_last", "_offset")

    def __init__(self) -> None:
        self._offset: int | None = None
        self._jump = False
        self._last: dict[TrackKind, int] = {}

    def discontinuity(self) -> None:
        """The publisher's clock restarts at the next frame."""
        if self._offset is not None:
            self._jump = True

    @property
    def last_ms(self) -> int:
        """The latest timestamp sent (ms), for configs sent mid-stream."""
        return max(self._last.values(), default=0) // TICKS_PER_MS

    def shift(self, frame: Frame) -> Frame:
        """``frame`` on the output clock (the same object when nothing moves)."""
        if self._offset is None:
            self._offset = -frame.dts
        elif self._jump:
            self._jump = False
            self._offset = max(self._last.values(), default=0) + RESUME_GAP - frame.dts
        dts = frame.dts + self._offset
        floor = self._last.get(frame.track, 0)
        if dts < floor:
            dts = floor
        self._last[frame.track] = dts
        shift = dts - frame.dts
        if shift == 0:
            return frame
        pts = frame.pts + shift
        return Frame(frame.track, frame.codec, dts, pts, frame.keyframe, frame.payload)
