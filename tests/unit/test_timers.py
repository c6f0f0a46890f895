"""DeadlineTimer: one loop timer following a core's deadline, kept when it fires early.
Ticker: one periodic timer for many cores."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from server.timers import DeadlineTimer, Ticker


async def test_follows_earlier_deadlines_and_keeps_early_timers() -> None:
    loop = asyncio.get_running_loop()
    fired: list[float] = []
    timer = DeadlineTimer(loop, lambda: fired.append(loop.time()))
    now = loop.time()
    timer.follow(now + 0.05)
    first = timer._handle
    timer.follow(now + 10)  # later deadline: the early timer stays
    assert timer._handle is first
    timer.follow(now + 0.02)  # earlier deadline: re-armed
    assert timer._handle is not first and timer.armed
    await asyncio.sleep(0.1)
    assert len(fired) == 1 and not timer.armed


async def test_none_and_cancel_disarm() -> None:
    loop = asyncio.get_running_loop()
    fired: list[int] = []
    timer = DeadlineTimer(loop, lambda: fired.append(1))
    timer.follow(loop.time() + 0.01)
    timer.follow(None)
    assert not timer.armed
    timer.follow(loop.time() + 0.01)
    timer.cancel()
    await asyncio.sleep(0.05)
    assert fired == []


def test_due_deadlines_under_uvloop() -> None:
    """uvloop answers call_at for a deadline < 0.5 ms away with a plain Handle (no
    ``when()``); following another deadline then must still work."""
    uvloop = pytest.importorskip("uvloop")

    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        fired: list[float] = []
        timer = DeadlineTimer(loop, lambda: fired.append(loop.time()))
        timer.follow(loop.time())  # due now: uvloop makes it a call_soon
        timer.follow(loop.time() + 10)  # a later deadline keeps the armed one
        timer.follow(loop.time() - 1)  # an earlier one re-arms
        await asyncio.sleep(0.01)
        return fired

    assert len(uvloop.run(main())) == 1


async def test_ticker_ticks_every_period_until_fire_says_stop() -> None:
    loop = asyncio.get_running_loop()
    ticks: list[float] = []

    def fire(now: float) -> bool:
        ticks.append(now)
        return len(ticks) < 4

    ticker = Ticker(loop, 0.01, fire)
    ticker.start()
    ticker.start()  # idempotent: still one timer
    await asyncio.sleep(0.1)
    assert len(ticks) == 4 and not ticker.running
    # each tick's now is at least one full period after the previous one
    assert all(b - a >= 0.01 for a, b in itertools.pairwise(ticks))


async def test_ticker_stop_and_close() -> None:
    loop = asyncio.get_running_loop()
    ticks: list[float] = []

    def fire(now: float) -> bool:
        ticks.append(now)
        return True

    ticker = Ticker(loop, 0.005, fire)
    ticker.start()
    await asyncio.sleep(0.03)
    ticker.stop()
    seen = len(ticks)
    assert seen >= 2 and not ticker.running
    ticker.start()
    ticker.close()
    await asyncio.sleep(0.02)
    assert len(ticks) == seen
    with pytest.raises(ValueError):
        Ticker(loop, 0, lambda now: True)
