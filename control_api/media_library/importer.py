"""URL imports: download over http(s) into the library, then probe as for uploads.

A task records the progress (bytes received over Content-Length, when the server
sent one). While downloading, the item exists in status ``uploading``; a refused or
failed download removes it again and fails the task with a readable reason. A file
that downloads but is not media stays as an ``error`` item, like an upload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote

import aiohttp
from yarl import URL

from control_api.credentials import new_id
from control_api.jobs import Jobs
from control_api.media_library.files import MediaFiles
from control_api.media_library.processor import Processor
from control_api.media_library.receiver import BatchWriter, open_upload_file
from control_api.media_library.targets import (
    GuardedResolver,
    TargetPolicy,
    TargetRefused,
    refusal_in,
)
from control_api.settings import MediaSettings
from control_api.store import Store
from control_api.store.models import Media, Task
from control_api.store.uploads import media_path

log = logging.getLogger("relaycast.media")
IMPORT_TASK = "media.import"
REDIRECTS = frozenset({301, 302, 303, 307, 308})
READ_CHUNK = 256 * 1024
PROGRESS_EVERY = 0.5  # seconds between progress writes...
PROGRESS_STEP = 0.05  # ...unless it moved this much


class ImportFailed(Exception):
    """Why the import did not produce a file; shown to the user as the task's error."""


def name_from_url(url: str) -> str:
    """The last path segment, else the host: what a user would call the file."""
    try:
        parsed = URL(url)
    except ValueError:
        return "import"
    segment = unquote(PurePosixPath(parsed.path).name).strip()
    return (segment or parsed.host or "import")[:200]


class _Progress:
    def __init__(self, store: Store, task_id: str, total: int | None) -> None:
        self._store, self._task_id, self._total = store, task_id, total
        self._written_at, self._written = 0.0, 0.0

    async def update(self, received: int) -> None:
        if not self._total:
            return
        value = min(received / self._total, 1.0)
        now = time.monotonic()
        if now - self._written_at >= PROGRESS_EVERY or value - self._written >= PROGRESS_STEP:
            self._written_at, self._written = now, value
            await self._store.tasks.update(self._task_id, progress=value)


class Importer:
    def __init__(
        self,
        store: Store,
        files: MediaFiles,
        processor: Processor,
        settings: MediaSettings,
        own_port: Callable[[], int],
        jobs: Jobs | None = None,
    ) -> None:
        self._store = store
        self._jobs = jobs
        self._files = files
        self._processor = processor
        self._settings = settings
        self._policy = TargetPolicy(settings.allow_private_import_targets, own_port)
        self._slots = asyncio.Semaphore(settings.import_concurrency)
        self._running: set[asyncio.Task[None]] = set()

    def start(self, task: Task) -> None:
        job = asyncio.create_task(self._run(task), name=f"media-import-{task.id}")
        self._running.add(job)
        job.add_done_callback(self._running.discard)

    async def stop(self) -> None:
        jobs = list(self._running)
        for job in jobs:
            job.cancel()
        for job in jobs:
            with contextlib.suppress(asyncio.CancelledError):
                await job

    async def idle(self) -> None:
        """Wait for every running import (tests)."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def _run(self, task: Task) -> None:
        """The import is a job (``import:<task id>``) while it runs: no other node's
        recovery fails it, and if this node dies another node's does."""
        job = f"import:{task.id}"
        if self._jobs is not None and not await self._jobs.take(job):
            return  # failed already by a node that found it abandoned
        try:
            await self._download_and_finish(task)
        finally:
            if self._jobs is not None:
                with contextlib.suppress(Exception):  # else it lapses with the lease
                    await self._jobs.release(job)

    async def _download_and_finish(self, task: Task) -> None:
        media_id = new_id("med")
        relative = media_path(task.environment_id, media_id)
        try:
            async with self._slots:
                await self._store.tasks.update(
                    task.id, status="running", result={"mediaId": media_id}
                )
                await self._store.media.add(await self._new_item(task, media_id, relative))
                url = str(task.params["url"])
                size = await self._download(task.id, url, self._files.part(relative))
            await self._finish(task, media_id, relative, size)
        except ImportFailed as exc:
            await self._abort(task, media_id, relative, str(exc))
        except asyncio.CancelledError:
            with contextlib.suppress(OSError):
                self._files.part(relative).unlink(missing_ok=True)
            raise
        except Exception:
            log.exception("import task %s failed unexpectedly", task.id)
            await self._abort(task, media_id, relative, "internal error; see the server log")

    async def _new_item(self, task: Task, media_id: str, relative: str) -> Media:
        filename = name_from_url(str(task.params["url"]))
        folder = task.params.get("folderId")
        if folder and await self._store.folders.get(task.environment_id, folder) is None:
            folder = None  # deleted since the import was asked for: the item lands in the root
        return Media(
            id=media_id,
            environment_id=task.environment_id,
            folder_id=folder,
            name=str(task.params.get("name") or filename),
            status="uploading",
            source="import",
            filename=filename,
            path=relative,
            size_bytes=0,
            created_at=datetime.now(UTC),
            tags=[],
        )

    async def _finish(self, task: Task, media_id: str, relative: str, size: int) -> None:
        """Downloaded: hand the file to the item (unless it was deleted meanwhile), probe."""
        moved = await self._store.media.transition(
            media_id, "uploading", "processing", size_bytes=size
        )
        try:
            if not moved:
                raise FileNotFoundError(relative)
            await asyncio.to_thread(
                os.replace, self._files.part(relative), self._files.path(relative)
            )
        except FileNotFoundError:
            await self._files.remove_part(relative)
            await self._fail(task, "the media item was deleted during the import", result=None)
            return
        await self._store.tasks.update(task.id, progress=1.0)
        status = await self._processor.process(media_id)
        if status == "ready":
            await self._store.tasks.update(task.id, status="done")
            return
        item = await self._store.media.by_id(media_id)
        reason = item.error if item is not None and item.error else "the file could not be probed"
        await self._fail(task, reason)

    async def _abort(self, task: Task, media_id: str, relative: str, reason: str) -> None:
        log.info("import task %s failed: %s", task.id, reason)
        await self._files.remove_part(relative)
        await self._files.remove(relative)
        await self._store.media.delete_ids([media_id])
        await self._fail(task, reason, result=None)

    async def _fail(self, task: Task, reason: str, **extra: Any) -> None:
        await self._store.tasks.update(task.id, status="failed", error=reason, **extra)
        row = await self._store.tasks.get(task.environment_id, task.id)
        if row is not None:
            self._store.events.emit("task.failed", row.environment_id, row)

    async def _download(self, task_id: str, url: str, dest: Path) -> int:
        settings = self._settings
        timeout = aiohttp.ClientTimeout(
            total=settings.import_timeout,
            sock_read=settings.import_idle_timeout,
            sock_connect=min(settings.import_idle_timeout, 30.0),
        )
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self._policy), use_dns_cache=False, limit=1
        )
        try:
            async with aiohttp.ClientSession(
                connector=connector, timeout=timeout, auto_decompress=False
            ) as http:
                response = await self._open(http, url)
                async with response:
                    return await self._save(task_id, response, dest)
        except ImportFailed:
            raise
        except TargetRefused as exc:
            raise ImportFailed(f"refused: {exc}") from None
        except TimeoutError:
            raise ImportFailed(
                f"timed out (import_timeout {settings.import_timeout:g} s, "
                f"import_idle_timeout {settings.import_idle_timeout:g} s)"
            ) from None
        except aiohttp.ClientError as exc:
            refusal = refusal_in(exc)
            if refusal:
                raise ImportFailed(f"refused: {refusal}") from None
            raise ImportFailed(f"download failed: {exc or type(exc).__name__}") from None
        except OSError as exc:
            raise ImportFailed(f"could not store the download: {exc.strerror or exc}") from None

    async def _open(self, http: aiohttp.ClientSession, url: str) -> aiohttp.ClientResponse:
        """GET ``url``, following redirects by hand so each hop is checked like the first."""
        try:
            current = URL(url)
        except ValueError:
            raise ImportFailed("invalid URL") from None
        for _ in range(self._settings.import_max_redirects + 1):
            if current.scheme not in ("http", "https") or not current.host:
                raise ImportFailed(f"only http(s) URLs can be imported, not {str(current)[:200]}")
            self._policy.check_host(current.host, current.port or 0)
            response = await http.get(
                current, allow_redirects=False, headers={"Accept-Encoding": "identity"}
            )
            location = response.headers.get("Location")
            if response.status in REDIRECTS and location:
                response.release()
                try:
                    current = current.join(URL(location))
                except ValueError:
                    raise ImportFailed("the server redirected to an invalid URL") from None
                continue
            if response.status != 200:
                response.release()
                raise ImportFailed(f"the server answered HTTP {response.status}")
            return response
        raise ImportFailed(f"more than {self._settings.import_max_redirects} redirects")

    async def _save(self, task_id: str, response: aiohttp.ClientResponse, dest: Path) -> int:
        limit = self._settings.import_max_bytes
        total = response.content_length
        if total is not None and total > limit:
            raise ImportFailed(f"the file is {total} bytes, over the import limit of {limit}")
        progress = _Progress(self._store, task_id, total)
        file = await open_upload_file(dest, 0)
        writer = BatchWriter(file, None, self._settings.write_buffer_bytes)
        try:
            received = 0
            async for chunk in response.content.iter_chunked(READ_CHUNK):
                received += len(chunk)
                if received > limit:
                    raise ImportFailed(f"the download passed the import limit of {limit} bytes")
                await writer.add(chunk)
                await progress.update(received)
            await writer.flush()
            await asyncio.to_thread(file.sync)
            return received
        finally:
            with contextlib.suppress(OSError):
                await writer.settle()
            file.close()
