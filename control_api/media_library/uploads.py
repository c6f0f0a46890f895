"""The tus upload flow over the store and the disk: create, append, complete, terminate.

The durable offset is the one in the database, written only after the bytes before it
were fsynced. The file may hold more when a process stopped mid-PATCH (or between the
fsync and the database write): the next start records those bytes (:meth:`recover`),
unless that PATCH carried a checksum; in a running process, opening the file for the
next append cuts off anything past the recorded offset.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from datetime import UTC, datetime, timedelta

from aiohttp import StreamReader

from control_api.jobs import Jobs
from control_api.media_library.files import MediaFiles
from control_api.media_library.gates import upload_job
from control_api.media_library.processor import Processor
from control_api.media_library.receiver import (
    BodyStalled,
    ChecksumMismatch,
    ShortFile,
    TooLarge,
    open_upload_file,
    receive,
    recover_file,
)
from control_api.media_library.tus import Checksum, TusProblem, checksum_mismatch
from control_api.settings import MediaSettings
from control_api.store import Store
from control_api.store.models import Upload
from control_api.store.uploads import NewUpload

log = logging.getLogger("relaycast.media")


def _too_large(row: Upload, past: int) -> TusProblem:
    return TusProblem(
        413,
        f"the body would take the upload to at least {past} bytes, past its "
        f"Upload-Length of {row.length}; nothing of this request was kept",
        headers={"Upload-Offset": str(row.received)},
    )


def _storage_problem(row: Upload, exc: OSError) -> TusProblem:
    log.error("storing upload %s failed: %s", row.id, exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return TusProblem(507, "the server is out of disk space; retry later")
    return TusProblem(503, "the server could not store the data; retry later")


class Uploads:
    def __init__(
        self, store: Store, files: MediaFiles, processor: Processor, settings: MediaSettings
    ) -> None:
        self._store = store
        self._files = files
        self._processor = processor
        self._settings = settings
        self.ttl = timedelta(hours=settings.upload_expiry_hours)

    async def create(self, environment_id: str, new: NewUpload) -> Upload:
        row = await self._store.uploads.create(environment_id, new, self.ttl)
        try:
            (await open_upload_file(self._files.path(row.path), 0)).close()
        except OSError as exc:
            await self._store.uploads.delete(row.id)
            raise _storage_problem(row, exc) from None
        if row.length == 0:
            await self._complete(row)
        return row

    async def offset(self, row: Upload) -> int:
        """What HEAD reports: the recorded offset, unless the file lost bytes since."""
        if row.completed_at is not None:
            return row.length
        size = await self._files.size(row.path) or 0
        return min(row.received, size)

    async def append(
        self,
        row: Upload,
        body: StreamReader,
        offset: int,
        checksum: Checksum | None,
        declared: int | None,
    ) -> Upload:
        """Store ``body`` at ``offset``; the caller holds the upload's gate."""
        current = row.received if row.completed_at is None else row.length
        if offset != current and row.completed_at is None:
            current = await self.offset(row)  # unless the file lost bytes, the client is wrong
            if current != row.received:
                await self._record(row, current)
        if offset != current:
            raise TusProblem(
                409,
                f"Upload-Offset {offset} does not match the upload's offset {current}; "
                "resume from the offset HEAD reports",
                slug="offset-mismatch",
                headers={"Upload-Offset": str(current)},
            )
        if declared is not None and current + declared > row.length:
            raise _too_large(row, current + declared)
        if row.completed_at is not None:
            return row
        stalled = False
        if checksum is not None:
            await self._files.mark_checksum_pending(row.path)
        try:
            new = await self._receive(row, body, current, checksum)
        except BodyStalled as stall:
            new, stalled = stall.offset, True
        except Exception:  # the file is back at ``current``; cancelled, the mark stays
            await self._checksum_done(row, checksum)
            raise
        if new != current:
            await self._record(row, new)
        await self._checksum_done(row, checksum)
        if stalled:
            problem = TusProblem(
                408,
                f"no data arrived for {self._settings.upload_idle_timeout:g} s; "
                f"{new} bytes are stored, resume from there",
                headers={"Upload-Offset": str(new)},
            )
            problem.close = True  # the body can no longer be read, so not drained either
            raise problem
        if new == row.length:
            await self._complete(row)
        return row

    async def _receive(
        self, row: Upload, body: StreamReader, current: int, checksum: Checksum | None
    ) -> int:
        try:
            file = await open_upload_file(self._files.path(row.path), current)
            return await receive(
                body,
                file,
                start=current,
                length=row.length,
                checksum=checksum,
                idle_timeout=self._settings.upload_idle_timeout,
                batch_bytes=self._settings.write_buffer_bytes,
            )
        except TooLarge as exc:
            raise _too_large(row, int(exc.args[0])) from None
        except ChecksumMismatch:
            raise checksum_mismatch(checksum.algorithm if checksum else "") from None
        except ShortFile as exc:  # the file shrank under us between the check and the open
            await self._record(row, exc.size)
            raise TusProblem(409, "the upload's file changed; ask HEAD for the offset") from None
        except OSError as exc:
            raise _storage_problem(row, exc) from None

    async def _checksum_done(self, row: Upload, checksum: Checksum | None) -> None:
        if checksum is not None:
            await self._files.clear_checksum_pending(row.path)

    async def recover(self, jobs: Jobs | None = None) -> None:
        """Record what PATCHes of a killed process had written.

        Run at start, before any request. The database holds the last offset recorded;
        the file may hold more, the start of a body that was being received. Without
        a checksum those bytes are kept, so the client resumes after them instead of
        sending them again; a checksummed PATCH left a mark and its bytes are cut off.
        With ``jobs`` on a shared database, an upload another node is writing now
        (its ``upload:<id>`` claim) is left alone.
        """
        now = datetime.now(UTC)
        for row in await self._store.uploads.unfinished():
            job = upload_job(row.id)
            if jobs is not None and not await jobs.take(job):
                continue
            try:
                checksummed = await self._files.checksum_pending(row.path)
                if row.expires_at > now:  # an expired one is the sweeper's
                    await self._recover_one(row, checksummed)
                if checksummed:
                    await self._files.clear_checksum_pending(row.path)
            finally:
                if jobs is not None:
                    await jobs.release(job)

    async def _recover_one(self, row: Upload, checksummed: bool) -> None:
        path = self._files.path(row.path)
        try:
            kept = await asyncio.to_thread(
                recover_file, path, row.received, row.length, checksummed
            )
        except OSError as exc:
            log.error("upload %s: could not check its file after a restart: %s", row.id, exc)
            return
        if kept is None:
            return
        log.warning(
            "upload %s: %d bytes stored by an interrupted request recovered, offset %d",
            row.id,
            kept - row.received,
            kept,
        )
        await self._record(row, kept)
        if kept == row.length:
            await self._complete(row)

    async def _record(self, row: Upload, offset: int) -> None:
        row.expires_at = await self._store.uploads.advance(row.id, offset, self.ttl)
        row.received = offset

    async def _complete(self, row: Upload) -> None:
        media = await self._store.uploads.complete(row)
        log.info("upload %s complete: media %s, %d bytes", row.id, media.id, row.length)
        self._processor.submit(media.id)

    async def terminate(self, row: Upload) -> None:
        """Forget the upload; an unfinished one's bytes go too (a finished one's belong to
        its media item, which stays)."""
        if row.completed_at is None:
            await self._files.remove(row.path)
        await self._store.uploads.delete(row.id)
