"""In-memory storage of one stream's segments, parts and init segments, bounded.

Keeps the playlist window plus the segments that have just left it: RFC 8216 6.2.2
wants a removed segment downloadable for its duration plus the playlist's, i.e. about
one more window. Segment numbers are consecutive, so lookups are index arithmetic.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .buffer import PartBuffer


@dataclass(slots=True)
class Part:
    """One LL-HLS part (or, without parts, the whole segment's only chunk list)."""

    index: int
    start: int  # media time, 90 kHz ticks
    independent: bool
    buffer: PartBuffer = field(default_factory=PartBuffer)
    duration: float = 0.0  # seconds, final once the buffer is complete


@dataclass(slots=True)
class Segment:
    """One media segment; ``duration`` is None while it is being written."""

    msn: int
    start: int  # media time, 90 kHz ticks
    discontinuity: bool
    program_date_time: float
    init_version: int | None
    parts: list[Part] = field(default_factory=list)
    duration: float | None = None
    size: int = 0  # bytes, final once sealed
    _joined: bytes | None = None

    @property
    def complete_parts(self) -> list[Part]:
        return [p for p in self.parts if p.buffer.complete]

    def seal(self, duration: float) -> None:
        """The segment is complete. Its bytes are joined only when someone asks for the
        whole segment (LL-HLS players fetch parts): a fresh megabyte per segment and
        stream costs page faults and copies that nobody may ever need."""
        self.duration = duration
        self.size = sum(p.buffer.size for p in self.parts)

    @property
    def data(self) -> bytes:
        """The parts joined (once); the parts then become views into these bytes."""
        if self._joined is None:
            self._joined = b"".join(p.buffer.data for p in self.parts)
            view = memoryview(self._joined)
            pos = 0
            for part in self.parts:
                size = part.buffer.size
                part.buffer.share(view[pos : pos + size])
                pos += size
        return self._joined


class SegmentStore:
    """Complete segments (window + retention), the discontinuity sequence, init segments."""

    __slots__ = ("_inits", "_retained", "_segments", "discontinuity_sequence", "window")

    def __init__(self, window: int, retained: int | None = None) -> None:
        self.window = window
        self._retained = window + 1 if retained is None else retained
        self._segments: deque[Segment] = deque()
        self._inits: dict[int, bytes] = {}
        self.discontinuity_sequence = 0

    def add_init(self, version: int, data: bytes) -> None:
        self._inits[version] = data

    def init(self, version: int) -> bytes | None:
        return self._inits.get(version)

    def add(self, segment: Segment) -> None:
        """Append a sealed segment and drop what fell out of window + retention."""
        segments = self._segments
        segments.append(segment)
        if len(segments) > self.window:
            leaving = segments[len(segments) - self.window - 1]
            if leaving.discontinuity:
                self.discontinuity_sequence += 1
        while len(segments) > self.window + self._retained:
            segments.popleft()
        self._drop_unused_inits(segment.init_version)

    def _drop_unused_inits(self, current: int | None) -> None:
        used = {s.init_version for s in self._segments}
        used.add(current)
        for version in [v for v in self._inits if v not in used]:
            del self._inits[version]

    def get(self, msn: int) -> Segment | None:
        """Complete segment ``msn`` if still stored (in the playlist or retained)."""
        if not self._segments:
            return None
        index = msn - self._segments[0].msn
        return self._segments[index] if 0 <= index < len(self._segments) else None

    def playlist(self) -> list[Segment]:
        """The segments the media playlist lists (the last ``window``)."""
        segments = self._segments
        start = max(0, len(segments) - self.window)
        return [segments[i] for i in range(start, len(segments))]

    @property
    def last(self) -> Segment | None:
        return self._segments[-1] if self._segments else None

    @property
    def stored_bytes(self) -> int:
        return sum(s.size for s in self._segments)

    def bandwidth(self, min_duration: float) -> tuple[int, int]:
        """(peak, average) bits per second over stored segments at least ``min_duration`` long."""
        usable = [s for s in self._segments if s.duration and s.duration >= min_duration]
        if not usable:
            usable = [s for s in self._segments if s.duration]
        if not usable:
            return 0, 0
        peak = max(s.size * 8 / (s.duration or 1) for s in usable)
        total = sum(s.duration or 0 for s in usable)
        return round(peak), round(sum(s.size for s in usable) * 8 / total)
