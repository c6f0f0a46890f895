"""Frames leave the worker in timestamp order across tracks, as a muxer interleaves.

A file's packets are interleaved loosely (audio often half a second ahead of its
video) and the encoders delay differently (x264's look-ahead, AAC's priming), so what
comes out of the two encoders is out of order between tracks. Publishing is paced by
each frame's timestamp in arrival order: a frame half a second early at the head
holds back the late ones behind it, and playout crawls. So frames wait here until the
other track has reached their time.
"""

from __future__ import annotations

import heapq
from itertools import count

from server.media.frame import Frame, TrackKind


class Interleaver:
    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Frame]] = []
        self._order = count()
        self._latest: dict[TrackKind, int] = {}

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, frames: list[Frame]) -> None:
        for frame in frames:
            heapq.heappush(self._heap, (frame.pts, next(self._order), frame))
            latest = self._latest.get(frame.track)
            self._latest[frame.track] = frame.pts if latest is None else max(latest, frame.pts)

    def ready(self) -> list[Frame]:
        """Frames no later than what both tracks have reached (nothing while one track
        has produced nothing yet)."""
        if len(self._latest) < 2:
            return []
        return self._pop(min(self._latest.values()))

    def drain(self) -> list[Frame]:
        """Everything, in order (an item's end, where both tracks are level)."""
        return self._pop(None)

    def clear(self) -> None:
        self._heap.clear()
        self._latest.clear()

    def _pop(self, until: int | None) -> list[Frame]:
        out = []
        while self._heap and (until is None or self._heap[0][0] <= until):
            out.append(heapq.heappop(self._heap)[2])
        return out
