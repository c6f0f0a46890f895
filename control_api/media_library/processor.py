"""Probing finished files in the background: ``processing`` → ``ready`` or ``error``.

The API answers as soon as the last byte is stored; the probe (and, for files that are
not MP4 but whose codecs MP4 carries, the one remux to a faststart MP4 behind
``mp4Url``) runs after, in worker threads, a few at a time. Items a previous process
left in ``processing`` are queued again at start-up, so a restart mid-probe loses
nothing. An item deleted while its remux runs is found gone when the result is
recorded, and the MP4 just made is removed (``removal.delete_item`` has the other half).
On a shared database each probe is a job (``probe:<media id>``) one node takes, and
the items a dead node was probing are taken over (:meth:`take_over`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from control_api.jobs import Jobs
from control_api.media_library.files import MediaFiles
from control_api.media_library.probe import NotMedia, ProbeResult, probe_file
from control_api.media_library.remux import MP4_SUFFIX, mp4_plan, remux_to_mp4
from control_api.store import Store

log = logging.getLogger("relaycast.media")


class Processor:
    def __init__(
        self,
        store: Store,
        files: MediaFiles,
        concurrency: int,
        remux: Callable[[Path, Path], None] = remux_to_mp4,
        jobs: Jobs | None = None,
    ) -> None:
        """``jobs``: None when this process is the only one probing (tests)."""
        self._store = store
        self._jobs = jobs
        self._files = files
        self._remux = remux
        self._concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._workers: list[asyncio.Task[None]] = []

    def submit(self, media_id: str) -> None:
        if media_id not in self._queued:  # queued again by take_over: once is enough
            self._queued.add(media_id)
            self._queue.put_nowait(media_id)

    async def start(self) -> None:
        for row in await self._store.media.with_status("processing"):
            self.submit(row.id)
        self._workers = [
            asyncio.create_task(self._work(), name=f"media-probe-{n}")
            for n in range(self._concurrency)
        ]

    async def take_over(self) -> int:
        """Queue the items waiting for a probe that no live node holds (a dead node's,
        mid-probe or queued there); the claim in :meth:`process` decides who probes."""
        rows = await self._store.media.with_status("processing")
        for row in rows:
            self.submit(row.id)
        return len(rows)

    async def stop(self) -> None:
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._workers = []

    async def idle(self) -> None:
        """Wait until every submitted item has been probed (tests, benchmarks)."""
        await self._queue.join()

    async def _work(self) -> None:
        while True:
            media_id = await self._queue.get()
            self._queued.discard(media_id)
            try:
                await self.process(media_id)
            except Exception:
                log.exception("probing media %s failed unexpectedly", media_id)
                await self._store.media.transition(
                    media_id, "processing", "error", error="internal error while probing"
                )
            finally:
                self._queue.task_done()

    async def process(self, media_id: str) -> str | None:
        """Probe one ``processing`` item; return its new status (None: gone or not pending)."""
        job = f"probe:{media_id}"
        if self._jobs is not None and not await self._jobs.take(job):
            return None  # another node (or this one, already) probes it
        try:
            return await self._probe(media_id)
        finally:
            if self._jobs is not None:
                with contextlib.suppress(Exception):  # else it lapses with the lease
                    await self._jobs.release(job)

    async def _probe(self, media_id: str) -> str | None:
        row = await self._store.media.by_id(media_id)
        if row is None or row.status != "processing":
            return None
        async with self._slots:
            try:
                result = await asyncio.to_thread(
                    probe_file, self._files.path(row.path), row.filename
                )
                mp4_path = await self._prepare_mp4(row.path, result, row.source == "recording")
            except NotMedia as exc:
                log.info("media %s is not playable: %s", media_id, exc)
                changed = await self._store.media.transition(
                    media_id, "processing", "error", error=str(exc)
                )
                return "error" if changed else None
        changed = await self._store.media.transition(
            media_id,
            "processing",
            "ready",
            error=None,
            duration_seconds=result.duration_seconds,
            container=result.container,
            video=result.video,
            audio=result.audio,
            mp4_path=mp4_path,
        )
        if not changed:  # deleted meanwhile: what this made is nobody's now
            if mp4_path is not None and mp4_path != row.path:
                await self._files.remove(mp4_path)
            return None
        ready = await self._store.media.by_id(media_id)
        if ready is not None:
            self._store.events.emit("media.ready", ready.environment_id, ready)
            if ready.source == "recording":
                self._store.events.emit("recording.ready", ready.environment_id, ready)
        return "ready"

    async def _prepare_mp4(self, path: str, result: ProbeResult, fragmented: bool) -> str | None:
        """The relative path of the item's seekable MP4, remuxing once when needed.

        A recording is a fragmented MP4: it plays, but seeking needs every fragment's
        header, so it is remuxed like any other container."""
        plan = mp4_plan(result)
        if plan == "as-is" and not fragmented:
            return path
        if plan == "none":
            return None
        target = path + MP4_SUFFIX
        await asyncio.to_thread(self._remux, self._files.path(path), self._files.path(target))
        return target
