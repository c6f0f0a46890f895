"""Playback counters the metrics endpoint reads: requests by kind and status, waits.

Plain numbers updated on the request path (no metrics library in the media plane);
the control plane turns them into Prometheus families at scrape time.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

WAIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
"""Seconds; blocking reloads wait about a part (0.5 s) and at most 3 target durations."""


@dataclass(slots=True)
class WaitHistogram:
    """Cumulative-bucket histogram of how long blocking playlist reloads waited."""

    bounds: tuple[float, ...] = WAIT_BUCKETS
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)  # the last slot is +Inf

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.total += seconds

    def cumulative(self) -> list[tuple[str, int]]:
        """(upper bound, count at or below it) pairs ending with ``+Inf``."""
        out: list[tuple[str, int]] = []
        running = 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


@dataclass(slots=True)
class HlsStats:
    """Requests keyed by (resource kind, HTTP status): both come from small fixed sets."""

    requests: Counter[tuple[str, int]] = field(default_factory=Counter)
    blocking_wait: WaitHistogram = field(default_factory=WaitHistogram)
