"""Fixed-window request budget per API key (or per address before authentication).

A fixed window keeps the ``RateLimit-*`` headers exact and costs one dict entry per
caller; windows that have expired are swept as new ones open, so memory stays
bounded by the callers active in the last minute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WINDOW_SECONDS = 60.0


@dataclass(slots=True)
class _Window:
    started: float
    used: int


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        out = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.reset_seconds)
        return out


class RateLimiter:
    def __init__(self, per_minute: int, max_callers: int = 100_000) -> None:
        self.per_minute = per_minute
        self._max_callers = max_callers
        self._windows: dict[str, _Window] = {}

    def __len__(self) -> int:
        return len(self._windows)

    def hit(self, caller: str, now: float) -> Verdict:
        window = self._windows.get(caller)
        if window is None or now - window.started >= WINDOW_SECONDS:
            self._sweep(now)
            window = self._windows[caller] = _Window(started=now, used=0)
        allowed = window.used < self.per_minute
        if allowed:
            window.used += 1
        reset = max(1, math.ceil(window.started + WINDOW_SECONDS - now))
        return Verdict(allowed, self.per_minute, self.per_minute - window.used, reset)

    def peek(self, caller: str, now: float) -> Verdict:
        """The caller's budget as it stands, without spending any of it."""
        window = self._windows.get(caller)
        if window is None or now - window.started >= WINDOW_SECONDS:
            return Verdict(True, self.per_minute, self.per_minute, int(WINDOW_SECONDS))
        reset = max(1, math.ceil(window.started + WINDOW_SECONDS - now))
        return Verdict(True, self.per_minute, self.per_minute - window.used, reset)

    def _sweep(self, now: float) -> None:
        if len(self._windows) < self._max_callers // 2:
            return
        for caller in [c for c, w in self._windows.items() if now - w.started >= WINDOW_SECONDS]:
            del self._windows[caller]
        while len(self._windows) >= self._max_callers:  # under a flood, forget the oldest
            del self._windows[next(iter(self._windows))]
