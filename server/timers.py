"""One event-loop timer that follows a sans-IO core's ``next_timer()`` deadline.

Every asyncio adapter around a protocol core (RTMP and SRT, ingest and push) needs
exactly this. Re-creating the timer whenever the deadline moves would cost a
cancel + ``call_at`` per read (the idle deadline moves with every read; it was the
largest per-read cost in the ingest profile), so an armed timer that fires no later
than the deadline is kept: firing early is harmless, because the core's
``handle_timer`` does nothing before its deadline and the adapter then follows the
new one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class DeadlineTimer:
    __slots__ = ("_fire", "_handle", "_loop", "_when")

    def __init__(self, loop: asyncio.AbstractEventLoop, fire: Callable[[], None]) -> None:
        self._loop = loop
        self._fire = fire
        self._handle: asyncio.Handle | None = None
        self._when = 0.0  # our own record: uvloop returns a plain Handle (no when())
        # for a call_at less than 0.5 ms away

    @property
    def armed(self) -> bool:
        return self._handle is not None

    def follow(self, deadline: float | None) -> None:
        """Fire no later than ``deadline``; None means the core needs no timer."""
        handle = self._handle
        if handle is not None:
            if deadline is not None and self._when <= deadline:
                return
            handle.cancel()
            self._handle = None
        if deadline is not None:
            self._when = deadline
            self._handle = self._loop.call_at(deadline, self._run)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def close(self) -> None:
        """Cancel for good and let go of the callback: it is usually a bound method
        of the timer's owner, which holds the timer, and that cycle would keep a
        closed connection (and all it holds) alive until a full garbage collection."""
        self.cancel()
        self._fire = _nothing

    def _run(self) -> None:
        self._handle = None
        self._fire()


def _nothing() -> None:
    return None
