"""Blocking playlist reloads held on one packager, released together once per change.

Hundreds of LL-HLS viewers hold a reload for the same next part. Giving each its own
task, event wait and timeout timer costs a wake-up and a timer per viewer per part;
here a held reload is a plain object in one dict: a playlist change schedules one
callback that settles every waiter in a single pass (each writes the response rendered
once for everyone), and one timer, armed for the earliest deadline, expires the vain
ones (503).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

EXPIRY_SLACK = 0.001
"""Seconds after a deadline the expiry timer fires, so the deadline has surely passed."""


class Waiter(Protocol):
    """One held request (hashable by identity)."""

    @property
    def deadline(self) -> float:
        """Loop time after which the request is answered 503."""
        ...

    def settle(self, now: float) -> bool:
        """Answer if the playlist now has what it waits for, the stream ended or the
        deadline passed; True once answered (or the connection is gone)."""
        ...


class HeldReloads:
    """The held reloads of one packager (or rendition)."""

    __slots__ = ("_scheduled", "_timer", "_waiting")

    def __init__(self) -> None:
        self._waiting: dict[Waiter, None] = {}
        self._scheduled = False
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._waiting)

    def hold(self, waiter: Waiter) -> None:
        """Hold ``waiter`` until a change or its deadline settles it."""
        self._waiting[waiter] = None
        if self._timer is None:
            self._arm(waiter.deadline)

    def drop(self, waiter: Waiter) -> None:
        """Forget a waiter whose connection went away."""
        self._waiting.pop(waiter, None)

    def changed(self) -> None:
        """The playlist changed (or the stream ended): settle everyone, once, soon."""
        if self._waiting and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._settle)

    def _settle(self) -> None:
        self._scheduled = False
        now = asyncio.get_running_loop().time()
        waiting, self._waiting = self._waiting, {}
        for waiter in waiting:
            if not waiter.settle(now):
                self._waiting[waiter] = None

    def _arm(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_at(deadline + EXPIRY_SLACK, self._expire)

    def _expire(self) -> None:
        self._timer = None
        self._settle()
        if self._waiting:  # waiters are held in arrival order: the first expires first
            self._arm(min(w.deadline for w in self._waiting))
