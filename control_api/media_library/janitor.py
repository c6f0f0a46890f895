"""Housekeeping: expired uploads, and what a previous process left half done.

Expired unfinished uploads lose their rows and bytes; finished ones only their rows
(the bytes belong to the media item). Imports cannot resume after a restart (the
connection is gone), so their tasks fail with a reason and their partial items and
files are removed; the user imports again. On a shared database only the imports no
live node holds (``import:<task id>``, see ``Importer``) are failed, and the sweep is
a singleton job (``sweep:media``) one node leads.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from control_api.jobs import Jobs
from control_api.media_library.files import MediaFiles
from control_api.media_library.gates import UploadGates
from control_api.store import Store
from control_api.store.models import Media, Task

log = logging.getLogger("relaycast.media")
INTERRUPTED = "interrupted by a server restart; start the import again"


async def sweep_expired(
    store: Store, files: MediaFiles, gates: UploadGates, now: datetime | None = None
) -> int:
    """Delete uploads past their expiry; return how many. Busy uploads are left alone."""
    removed = 0
    for row in await store.uploads.expired(now or datetime.now(UTC)):
        if gates.busy(row.id):
            continue
        if row.completed_at is None:
            await files.remove(row.path)
        await store.uploads.delete(row.id)
        removed += 1
    return removed


async def recover_after_restart(store: Store, files: MediaFiles, jobs: Jobs | None = None) -> int:
    """Fail imports a previous process was running and remove their items, whatever
    stage they reached (the user imports again); return how many.

    With ``jobs`` on a shared database: only imports whose node died (their claim
    lapsed, or never taken a lease after they were asked for), never a live node's."""
    if jobs is not None and jobs.shared:
        return await _fail_abandoned_imports(store, files, jobs)
    tasks = await store.tasks.unfinished()
    doomed = {item.id: item.path for item in await store.media.with_status("uploading")}
    for task in tasks:
        item = await _fail_import(store, task)
        if item is not None:
            doomed[item.id] = item.path
    await _remove_items(store, files, doomed)
    return len(tasks)


async def _fail_abandoned_imports(store: Store, files: MediaFiles, jobs: Jobs) -> int:
    settled = datetime.now(UTC) - timedelta(seconds=jobs.lease)
    failed = 0
    for task in await store.tasks.unfinished():
        job = f"import:{task.id}"
        if task.created_at > settled or not await jobs.take(job):
            continue  # just asked for (its node takes it at once), or running on a live node
        item = await _fail_import(store, task)
        await _remove_items(store, files, {item.id: item.path} if item is not None else {})
        await jobs.release(job)
        failed += 1
    return failed


async def _fail_import(store: Store, task: Task) -> Media | None:
    """Fail the task (``task.failed``); its item, if it got one."""
    media_id = (task.result or {}).get("mediaId")
    item = await store.media.by_id(media_id) if media_id else None
    await store.tasks.update(task.id, status="failed", error=INTERRUPTED, result=None)
    failed = await store.tasks.get(task.environment_id, task.id)
    if failed is not None:
        store.events.emit("task.failed", failed.environment_id, failed)
    return item


async def _remove_items(store: Store, files: MediaFiles, doomed: dict[str, str]) -> None:
    for path in doomed.values():
        await files.remove_part(path)
        await files.remove(path)
    await store.media.delete_ids(list(doomed))


async def sweep_old_recordings(
    store: Store, files: MediaFiles, keep_days: int, now: datetime | None = None
) -> int:
    """Delete recordings older than ``keep_days`` (``recording.delete_after_days``; 0
    keeps them); return how many."""
    if keep_days <= 0:
        return 0
    cutoff = (now or datetime.now(UTC)) - timedelta(days=keep_days)
    removed = 0
    for row in await store.media.recordings_before(cutoff):
        if await store.media.delete(row.environment_id, row.id) is None:
            continue
        await files.remove(row.path)
        if row.mp4_path and row.mp4_path != row.path:
            await files.remove(row.mp4_path)
        removed += 1
    return removed


async def sweep_forever(
    store: Store,
    files: MediaFiles,
    gates: UploadGates,
    interval: float,
    keep_days: int = 0,
    jobs: Jobs | None = None,
) -> None:
    while True:
        try:
            if jobs is None or await jobs.lead("sweep:media"):
                await sweep_once(store, files, gates, keep_days)
        except Exception:
            log.exception("sweeping expired uploads failed; trying again later")
        await asyncio.sleep(interval)


async def sweep_once(store: Store, files: MediaFiles, gates: UploadGates, keep_days: int) -> None:
    removed = await sweep_expired(store, files, gates)
    if removed:
        log.info("removed %d expired upload(s)", removed)
    old = await sweep_old_recordings(store, files, keep_days)
    if old:
        log.info("deleted %d recording(s) older than %d days", old, keep_days)
