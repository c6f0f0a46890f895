"""BackgroundTasks: held until done, failures logged once, cancellation on close."""

from __future__ import annotations

import asyncio
import logging

import pytest

from server.tasks import BackgroundTasks

log = logging.getLogger("relaycast.test.tasks")


async def test_a_failed_task_is_logged_with_its_traceback_and_forgotten(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = BackgroundTasks(log, "bookkeeping failed")

    async def fail() -> None:
        raise RuntimeError("boom")

    task = tasks.spawn(fail())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert task.done() and len(tasks) == 0
    [record] = [r for r in caplog.records if r.name == log.name]
    assert record.levelno == logging.ERROR and record.getMessage() == "bookkeeping failed"
    assert record.exc_info is not None and str(record.exc_info[1]) == "boom"


async def test_a_task_is_held_until_it_finishes() -> None:
    tasks = BackgroundTasks(log, "bookkeeping failed")
    finished = asyncio.Event()
    release = asyncio.Event()

    async def work() -> None:
        await release.wait()
        finished.set()

    task = tasks.spawn(work(), name="work")
    assert len(tasks) == 1 and task.get_name() == "work"
    release.set()
    await asyncio.wait_for(finished.wait(), 1)
    await asyncio.sleep(0)
    assert len(tasks) == 0


async def test_close_cancels_and_waits_and_cancel_does_not_wait(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = BackgroundTasks(log, "bookkeeping failed")
    unwound: list[str] = []

    async def long(name: str) -> None:
        try:
            await asyncio.sleep(60)
        finally:
            await asyncio.sleep(0)
            unwound.append(name)

    first = tasks.spawn(long("a"))
    await asyncio.sleep(0)
    tasks.cancel()
    assert not first.done() and unwound == []
    await asyncio.sleep(0.01)
    assert first.cancelled() and unwound == ["a"]
    tasks.spawn(long("b"))
    tasks.spawn(long("c"))
    await asyncio.sleep(0)
    await tasks.close()
    assert sorted(unwound) == ["a", "b", "c"] and len(tasks) == 0
    assert not [r for r in caplog.records if r.name == log.name]  # cancelling is no failure
