"""Refused publishes into the database, off the ingest path.

``IngestManager`` hands each refusal to its sinks synchronously on the event loop;
this sink only appends to a bounded queue, and one background task writes batches.
A flood of refusals (a misconfigured encoder farm, a scanner) therefore costs
ingest an append, and past the bound the surplus is dropped and counted rather
than buffered without limit. The table keeps only the newest N rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from control_api.store.ingest_failures import IngestFailureRepo
from server.ingest.ports import IngestRefusal

log = logging.getLogger("relaycast.diagnostics")
QUEUE_BOUND = 1000
BATCH = 100


class RefusalRecorder:
    """A ``RefusalSink`` that persists refusals; ``start`` it on the loop, ``stop`` flushes."""

    def __init__(self, repo: IngestFailureRepo, keep: int, bound: int = QUEUE_BOUND) -> None:
        self.repo = repo
        self.keep = keep
        self.dropped = 0
        self._queue: asyncio.Queue[IngestRefusal] = asyncio.Queue(bound)
        self._task: asyncio.Task[None] | None = None

    def refused(self, refusal: IngestRefusal) -> None:
        try:
            self._queue.put_nowait(refusal)
        except asyncio.QueueFull:
            self.dropped += 1

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self.repo.add(batch, self.keep)
            except Exception:  # the database being away must not end diagnostics for good
                log.exception("could not record %d ingest refusal(s)", len(batch))
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def flush(self) -> None:
        """Wait until everything queued so far is written (tests, shutdown)."""
        await self._queue.join()

    async def stop(self, grace: float = 2.0) -> None:
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), grace)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
