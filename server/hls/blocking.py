"""LL-HLS blocking playlist reload: when to answer ``?_HLS_msn=M&_HLS_part=N`` (pure).

The HTTP handler parses the query once (``parse_directives``), creates a
``BlockingReload`` with the time the request arrived, and asks ``decide(edge, now)``
after every playlist change: READY -> send the playlist, WAIT -> sleep at most
``Decision.wait`` seconds (or until the next change), BAD_REQUEST -> 400 at once,
UNAVAILABLE -> 503. Time is always passed in, so tests drive it with a fake clock.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

BLOCK_LIMIT_FACTOR = 3
"""Answer 503 after blocking this many target durations (RFC 8216bis 6.2.5.2)."""


class BadDirective(ValueError):
    """The query's delivery directives are malformed -> 400 Bad Request."""


@dataclass(frozen=True, slots=True)
class Directives:
    """The playlist delivery directives of one request (all optional)."""

    msn: int | None = None
    part: int | None = None
    skip: bool = False

    @property
    def blocking(self) -> bool:
        """The request asks to be held until the playlist has something new."""
        return self.msn is not None


def _index(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    # ASCII only: str.isdigit() also accepts "²" (int() then raises) and U+0661 (read as 1).
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
        raise BadDirective(f"{name} must be a non-negative integer in ASCII digits")
    return int(raw)


def parse_directives(query: Mapping[str, str]) -> Directives:
    """Read ``_HLS_msn``, ``_HLS_part`` and ``_HLS_skip`` from a request's query."""
    msn = _index(query, "_HLS_msn")
    part = _index(query, "_HLS_part")
    if part is not None and msn is None:
        raise BadDirective("_HLS_part without _HLS_msn")
    skip = query.get("_HLS_skip")
    if skip not in (None, "YES", "v2"):
        raise BadDirective("_HLS_skip must be YES or v2")
    return Directives(msn, part, skip is not None)


@dataclass(frozen=True, slots=True)
class Edge:
    """Where the live edge of a media playlist is.

    ``last_msn``: last complete segment (-1 before the first); ``last_segment_parts``:
    how many parts it had; ``last_part``: last complete part of the open segment
    ``last_msn + 1`` (-1 none yet); ``ended``: EXT-X-ENDLIST is present.
    """

    last_msn: int = -1
    last_segment_parts: int = 0
    last_part: int = -1
    ended: bool = False

    def has(self, msn: int, part: int | None) -> bool:
        """True when the playlist contains segment ``msn`` (or part ``part`` of it)."""
        if part is None:
            return msn <= self.last_msn
        if msn == self.last_msn and part >= self.last_segment_parts:
            msn, part = msn + 1, 0  # beyond the last part of M means part 0 of M + 1
        return msn <= self.last_msn or (msn == self.last_msn + 1 and part <= self.last_part)


class Outcome(enum.Enum):
    """What to do with a held playlist request now."""

    READY = "ready"
    WAIT = "wait"
    BAD_REQUEST = "bad_request"  # 400
    UNAVAILABLE = "unavailable"  # 503


@dataclass(frozen=True, slots=True)
class Decision:
    """An outcome, how long a WAIT may last at most, and why a request was refused."""

    outcome: Outcome
    wait: float = 0.0  # WAIT: longest sleep before deciding again (the 503 deadline)
    reason: str = ""


def advance_part_limit(part_target: float) -> int:
    """How far ahead of the last part a request may ask (RFC 8216bis 6.2.5.2)."""
    return int(3 / part_target) if part_target < 1 else 3


def _too_far(msn: int, part: int | None, edge: Edge, part_target: float | None) -> str:
    """Why the request asks for something too far ahead (400), or "" when it does not."""
    if msn > edge.last_msn + 2:
        return f"_HLS_msn {msn} is more than two segments ahead of {edge.last_msn}"
    if part is None:
        return ""
    if part_target is None:
        return "_HLS_part on a playlist without parts"
    if msn == edge.last_msn + 1:
        ahead = part - edge.last_part
    elif msn == edge.last_msn + 2:
        ahead = part + 1  # at least: the open segment's remaining parts come first
    else:
        ahead = 0
    limit = advance_part_limit(part_target)
    if ahead > limit:
        return f"_HLS_part {part} is {ahead} parts ahead, beyond the limit {limit}"
    return ""


class BlockingReload:
    """One held playlist request: decide again whenever the playlist changes."""

    __slots__ = ("_deadline", "_part_target", "directives", "started")

    def __init__(
        self,
        directives: Directives,
        started: float,
        target_duration: float,
        part_target: float | None,
    ) -> None:
        self.directives = directives
        self.started = started
        self._deadline = started + BLOCK_LIMIT_FACTOR * target_duration
        self._part_target = part_target

    @property
    def deadline(self) -> float:
        """When a request still waiting is answered UNAVAILABLE (503)."""
        return self._deadline

    def decide(self, edge: Edge, now: float) -> Decision:
        """READY / WAIT / BAD_REQUEST / UNAVAILABLE for the playlist edge at ``now``."""
        d = self.directives
        if d.msn is None or edge.ended:
            return Decision(Outcome.READY)  # directives are ignored once the stream ended
        reason = _too_far(d.msn, d.part, edge, self._part_target)
        if reason:
            return Decision(Outcome.BAD_REQUEST, reason=reason)
        if edge.has(d.msn, d.part):
            return Decision(Outcome.READY)
        if now >= self._deadline:
            return Decision(Outcome.UNAVAILABLE, reason="blocked for three target durations")
        return Decision(Outcome.WAIT, wait=self._deadline - now)
