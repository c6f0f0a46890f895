"""Fire-and-forget bookkeeping tasks that are neither lost nor silent.

A manager that starts work from a synchronous callback (a session opened, a timer
fired) must keep a reference to each task, or the event loop may collect it
mid-flight, and must log a failure, or it vanishes as "Task exception was never
retrieved" at some later garbage collection. The ingest and push managers both need
exactly this, so it lives here once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any


class BackgroundTasks:
    """The running tasks of one owner; a failed task is logged as ``failure`` on
    ``log`` with its traceback, a cancelled one silently."""

    def __init__(self, log: logging.Logger, failure: str) -> None:
        self._log = log
        self._failure = failure
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, None], name: str | None = None) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error(self._failure, exc_info=task.exception())

    def cancel(self) -> None:
        """Cancel every running task without waiting for them to unwind."""
        for task in list(self._tasks):
            task.cancel()

    async def close(self) -> None:
        """Cancel every running task and wait until each has unwound."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.difference_update(tasks)  # a task already done when awaited
