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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.bus import Reader


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


class Ticker:
    """One periodic timer driving many sans-IO cores (all SRT connections of a
    listener): a timer per connection cost a loop timer handle, a cancel and a
    ``next_timer()`` computation per datagram; one tick every ``period`` serves them
    all, and each core's ``handle_timer`` does nothing before its own deadlines.

    ``fire(now)`` gets a ``now`` that never runs behind the scheduled tick, so a core
    whose period equals the tick (SRT's 10 ms ACK) sees the full period elapsed even
    when the loop wakes a hair early. ``start`` is idempotent; the owner stops the
    ticker (or returns False from ``fire``) when nothing is left to drive.
    """

    __slots__ = ("_at", "_fire", "_handle", "_loop", "period")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        period: float,
        fire: Callable[[float], bool],
    ) -> None:
        if period <= 0:
            raise ValueError("period must be positive")
        self._loop = loop
        self.period = period
        self._fire = fire
        self._handle: asyncio.Handle | None = None
        self._at = 0.0

    @property
    def running(self) -> bool:
        return self._handle is not None

    def start(self) -> None:
        if self._handle is None:
            self._at = self._loop.time() + self.period
            self._handle = self._loop.call_at(self._at, self._run)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def close(self) -> None:
        """Stop for good and let go of the callback (see :meth:`DeadlineTimer.close`)."""
        self.stop()
        self._fire = _always_stop

    def _run(self) -> None:
        now = self._loop.time()
        if now < self._at:
            now = self._at
        self._at = now + self.period
        self._handle = self._loop.call_at(self._at, self._run)
        if not self._fire(now):
            self.stop()


def _always_stop(now: float) -> bool:
    return False


async def run_batches(
    reader: Reader,
    interval: float,
    tick: Callable[[float], bool],
    empty: Callable[[], bool],
    ending: Callable[[], bool] = lambda: False,
) -> None:
    """One batch per ``interval`` for all the outputs of one bus reader (a stream's
    players, its push destinations), run at the first publish after it is due: woken by
    the publisher, the batch shares the loop turn of the ingest read (a timer of its own
    cost an extra wake-up per batch). Without publishes it still runs within an interval
    past due; once ``ending`` (the reader is done, backlogs remain) it just sleeps.
    Returns when ``empty()`` or when ``tick(now)`` says it is finished."""
    loop = asyncio.get_running_loop()
    due = loop.time() + interval
    while not empty():
        if ending():
            await asyncio.sleep(interval)
        else:
            await reader.offered(due, max(due - loop.time(), 0.0) + interval)
        now = loop.time()
        if now < due and not reader.closed:  # closed: go and see the end
            continue
        if tick(now):
            return
        due = now + interval
