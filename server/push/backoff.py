"""Reconnect delays for a destination: exponential, jittered, capped, forgiving.

Fixed-interval retry loops hammer a platform that is down and, with many streams,
reconnect in lock-step. Doubling spreads the load while an outage lasts; jitter
breaks the lock-step; the reset after a stable connection means a destination that
ran fine for an hour and then hiccups retries after about a second, not a minute.
Sans-IO: the caller passes ``now`` and sleeps itself.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

_MAX_EXPONENT = 30  # 2**30 s is far past any cap; keeps the float finite


@dataclass(slots=True)
class Backoff:
    """Delay before the next attempt: ``initial`` doubling up to ``cap`` seconds.

    Each delay is reduced by up to ``jitter`` of itself (0.25: a 4 s step waits
    3-4 s), so consecutive delays still never shrink. A connection that stayed up
    for ``stable_after`` seconds resets the sequence.
    """

    initial: float = 1.0
    cap: float = 60.0
    stable_after: float = 60.0
    jitter: float = 0.25
    rng: Callable[[], float] = field(default=random.random, repr=False)
    failures: int = 0
    connected_at: float | None = None

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.cap < self.initial:
            raise ValueError("need 0 < initial <= cap")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    def connected(self, now: float) -> None:
        """An attempt succeeded; the stability clock starts."""
        self.connected_at = now

    def failed(self, now: float) -> float:
        """An attempt (or an established connection) failed: seconds to wait."""
        if self.connected_at is not None and now - self.connected_at >= self.stable_after:
            self.failures = 0
        self.connected_at = None
        base = min(self.cap, self.initial * 2.0 ** min(self.failures, _MAX_EXPONENT))
        self.failures += 1
        return base * (1.0 - self.jitter * self.rng())

    def reset(self) -> None:
        """Start over (the destination was changed: its old failures say nothing)."""
        self.failures = 0
        self.connected_at = None
