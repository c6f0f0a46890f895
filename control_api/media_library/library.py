"""The media library as one object on the app: files, uploads, probing, imports, sweeps.

Its background work starts and stops with the HTTP app (``lifecycle`` is an aiohttp
cleanup context), so a test server and ``relaycast serve`` get exactly the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from control_api.jobs import Jobs
from control_api.lifecycle import Service
from control_api.media_library.files import MediaFiles
from control_api.media_library.gates import UploadGates
from control_api.media_library.importer import Importer
from control_api.media_library.janitor import recover_after_restart, sweep_forever
from control_api.media_library.processor import Processor
from control_api.media_library.uploads import Uploads
from control_api.settings import Settings
from control_api.store import Store
from control_api.urls import Endpoints

log = logging.getLogger("relaycast.media")


class MediaLibrary(Service):
    def __init__(self, settings: Settings, store: Store, endpoints: Endpoints) -> None:
        self.settings = settings.media
        self.keep_recordings_days = settings.recording.delete_after_days
        self.store = store
        self.files = MediaFiles(settings.server.data_dir)
        self.jobs = Jobs.of(settings, store)
        self.gates = UploadGates(self.jobs)
        self.processor = Processor(
            store, self.files, self.settings.probe_concurrency, jobs=self.jobs
        )
        self.uploads = Uploads(store, self.files, self.processor, self.settings)
        self.importer = Importer(
            store,
            self.files,
            self.processor,
            self.settings,
            lambda: endpoints.http_port,
            jobs=self.jobs,
        )
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.files.root.mkdir(parents=True, exist_ok=True)
        interrupted = await recover_after_restart(self.store, self.files, self.jobs)
        if interrupted:
            log.warning("failed %d import(s) a previous process left running", interrupted)
        await self.processor.start()
        await self.uploads.recover(self.jobs)  # after the processor: a completed upload is queued
        self._sweeper = asyncio.create_task(
            sweep_forever(
                self.store,
                self.files,
                self.gates,
                self.settings.cleanup_interval,
                self.keep_recordings_days,
                self.jobs,
            ),
            name="media-upload-sweeper",
        )

    async def take_over(self) -> None:
        """A node's upkeep on a shared database: the imports and probes a dead node
        left are failed or probed here (each by one node: the job claims decide)."""
        interrupted = await recover_after_restart(self.store, self.files, self.jobs)
        if interrupted:
            log.warning("failed %d import(s) a dead node left running", interrupted)
        await self.processor.take_over()

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await self.importer.stop()
        await self.processor.stop()
