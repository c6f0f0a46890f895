"""Held blocking reloads: one settling pass per change, one expiry timer, drops."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from server.hls.held import HeldReloads


@dataclass(eq=False)
class Waiter:
    deadline: float
    ready: bool = False
    gone: bool = False
    settled_at: list[float] = field(default_factory=list)
    asked: int = 0

    def settle(self, now: float) -> bool:
        self.asked += 1
        if self.gone:
            return True
        if self.ready or now >= self.deadline:
            self.settled_at.append(now)
            return True
        return False


async def test_many_changes_settle_everyone_in_one_pass() -> None:
    held = HeldReloads()
    loop = asyncio.get_running_loop()
    waiters = [Waiter(loop.time() + 60) for _ in range(100)]
    for waiter in waiters:
        held.hold(waiter)
    for waiter in waiters[:60]:
        waiter.ready = True
    for _ in range(5):  # several changes before the loop runs: still one pass
        held.changed()
    await asyncio.sleep(0)
    assert [w.asked for w in waiters] == [1] * 100
    assert len(held) == 40 and all(w.settled_at for w in waiters[:60])
    held.changed()
    await asyncio.sleep(0)
    assert [w.asked for w in waiters[60:]] == [2] * 40 and len(held) == 40


async def test_vain_waiters_expire_at_their_deadline_by_one_timer() -> None:
    held = HeldReloads()
    loop = asyncio.get_running_loop()
    start = loop.time()
    first, second = Waiter(start + 0.1), Waiter(start + 0.25)
    held.hold(first)
    held.hold(second)
    await asyncio.sleep(0.15)
    assert first.settled_at and first.settled_at[0] >= first.deadline and not second.settled_at
    assert len(held) == 1
    await asyncio.sleep(0.15)
    assert second.settled_at and second.settled_at[0] >= second.deadline and len(held) == 0


async def test_dropped_and_gone_waiters_are_forgotten() -> None:
    held = HeldReloads()
    loop = asyncio.get_running_loop()
    kept, dropped, gone = (Waiter(loop.time() + 60) for _ in range(3))
    for waiter in (kept, dropped, gone):
        held.hold(waiter)
    held.drop(dropped)
    gone.gone = True
    held.changed()
    await asyncio.sleep(0)
    assert dropped.asked == 0 and gone.asked == 1 and len(held) == 1
    held.changed()
    held.drop(kept)  # between the change and the pass
    await asyncio.sleep(0)
    assert kept.asked == 1 and len(held) == 0
