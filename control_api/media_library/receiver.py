"""Appending a request body to an upload's file: streamed, bounded, durable, all-or-kept.

Memory stays flat whatever the file size: the body is read as the network delivers it
and handed to a worker thread in batches of ``batch`` bytes, at most one batch being
written while the next fills (so at most about two batches per upload are in memory).

The file only ever holds bytes the server can vouch for. The caller records the
returned offset only after ``fsync``; on a refusal (over the length, checksum
mismatch, disk error) the file is truncated back to where this request started, so
nothing received earlier is touched. When the client goes away mid-body the bytes
that did arrive are kept (tus asks servers to store as much as they can), unless a
checksum was promised for the whole body, which can then not be checked. The same
holds when the server stops or dies mid-body: what was written is recovered at the
next start (:func:`recover_file`), or cut off if a checksum was promised.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import StreamReader
from aiohttp.http_exceptions import HttpProcessingError

from control_api.media_library.tus import Checksum

_IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024
_READ_ERRORS = (HttpProcessingError, ConnectionError, asyncio.IncompleteReadError)
_EARLY_WRITEBACK = hasattr(os, "posix_fadvise")


class TooLarge(Exception):
    """The body would take the upload past its declared length."""


class ChecksumMismatch(Exception):
    """The body's digest is not the one the client announced."""


class BodyStalled(Exception):
    """No bytes arrived for the idle timeout; what did arrive is kept (see ``offset``)."""

    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        self.offset = offset


class ShortFile(Exception):
    """The file holds fewer bytes than the recorded offset (lost outside our control)."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class UploadFile:
    """An upload's data file, opened for appending at a known-good offset.

    Blocking calls; the receiver runs them in worker threads. Anything past ``start``
    (left by a crash between a write and the offset being recorded) is cut off first.
    """

    def __init__(self, path: Path, start: int) -> None:
        self.position = start
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            size = os.fstat(self._fd).st_size
            if size < start:
                raise ShortFile(size)
            if size > start:
                os.ftruncate(self._fd, start)
            os.lseek(self._fd, start, os.SEEK_SET)
        except BaseException:
            os.close(self._fd)
            raise

    def write(self, chunks: list[bytes], hasher: Any) -> None:
        if hasher is not None:
            for chunk in chunks:
                hasher.update(chunk)
        pending = [memoryview(c) for c in chunks]
        while pending:
            written = os.writev(self._fd, pending[:_IOV_MAX])
            while written and pending:
                if written >= len(pending[0]):
                    written -= len(pending.pop(0))
                else:
                    pending[0] = pending[0][written:]
                    written = 0
        size = sum(len(c) for c in chunks)
        if _EARLY_WRITEBACK:
            # Start writing these pages to the device now (and drop them from the page
            # cache once written): the fsync that ends the request then has little left
            # to wait for, and a large upload does not push other files out of the cache.
            os.posix_fadvise(self._fd, self.position, size, os.POSIX_FADV_DONTNEED)
        self.position += size

    def sync(self) -> None:
        os.fsync(self._fd)

    def truncate(self, size: int) -> None:
        os.ftruncate(self._fd, size)
        os.lseek(self._fd, size, os.SEEK_SET)
        self.position = size

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


async def open_upload_file(path: Path, start: int) -> UploadFile:
    return await asyncio.to_thread(UploadFile, path, start)


def recover_file(path: Path, recorded: int, length: int, checksummed: bool) -> int | None:
    """After a crash: the new durable offset when the file holds more than ``recorded``.

    Bytes past ``recorded`` are what a PATCH had written when the process died: the
    start of its body. tus wants them kept (up to ``length``), unless that PATCH
    carried a checksum (``checksummed``), which a partial body cannot be checked
    against: then they are cut off. Blocking; what is kept is fsynced first.
    """
    size = _size_or_none(path)
    if size is None or size <= recorded:
        return None
    keep = recorded if checksummed else min(size, length)
    file = UploadFile(path, keep)  # cuts off anything past ``keep``
    try:
        file.sync()
    finally:
        file.close()
    return keep if keep > recorded else None


def _size_or_none(path: Path) -> int | None:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return None


@dataclass
class BatchWriter:
    """Chunks waiting for the disk, and the one write that may be in flight.

    Batching turns many small network reads into a few large ``writev`` calls, and one
    write in flight lets the network and the disk work at the same time.
    """

    file: UploadFile
    hasher: Any
    limit: int
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    written: int = 0
    in_flight: asyncio.Future[None] | None = None

    async def add(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.size += len(chunk)
        if self.size >= self.limit:
            await self._dispatch()

    async def _dispatch(self) -> None:
        await self.settle()
        batch, self.chunks, self.size = self.chunks, [], 0
        self.in_flight = asyncio.ensure_future(
            asyncio.to_thread(self.file.write, batch, self.hasher)
        )
        self.written += sum(len(c) for c in batch)

    async def flush(self) -> None:
        if self.chunks:
            await self._dispatch()
        await self.settle()

    async def settle(self) -> None:
        if self.in_flight is not None:
            future, self.in_flight = self.in_flight, None
            await future


async def receive(
    body: StreamReader,
    file: UploadFile,
    *,
    start: int,
    length: int,
    checksum: Checksum | None,
    idle_timeout: float,
    batch_bytes: int,
) -> int:
    """Append ``body`` at ``start``; return the new offset, fsynced. Closes ``file``.

    Raises TooLarge, ChecksumMismatch or OSError (disk) with the file back at ``start``,
    and BodyStalled with the bytes that arrived kept.
    """
    batches = BatchWriter(file, checksum.hasher() if checksum else None, batch_bytes)
    abandoned = False
    try:
        outcome = await _pump(body, batches, start, length, idle_timeout)
        await batches.flush()
        kept = start + batches.written
        if checksum is not None and (
            outcome is not COMPLETE or batches.hasher.digest() != checksum.digest
        ):
            await asyncio.to_thread(file.truncate, start)
            if outcome is COMPLETE:
                raise ChecksumMismatch(checksum.algorithm)
            kept = start  # a partial body cannot be checked against the promised digest
        if kept != start:
            await asyncio.to_thread(file.sync)
    except asyncio.CancelledError:
        abandoned = True
        _abandon(batches, start if checksum is not None else None)
        raise
    except BaseException:
        await _rollback(batches, start)
        raise
    finally:
        if not abandoned:
            file.close()
    if outcome is STALLED:
        raise BodyStalled(kept)
    return kept


COMPLETE, GONE, STALLED = "complete", "gone", "stalled"


class BodyIdle(TimeoutError):
    """Set on the request body by the watchdog: nothing arrived for the idle timeout.

    A TimeoutError, so that aiohttp, draining the body after the response, treats the
    dead body as the timeout it is and closes the connection quietly.
    """


class _Watchdog:
    """Fails the body's next read once no bytes arrived for ``idle`` seconds.

    One timer, re-armed only when it fires early, instead of a timeout per read: a
    large upload is read in thousands of small pieces.
    """

    def __init__(self, body: StreamReader, idle: float) -> None:
        self._body, self._idle = body, idle
        self._loop = asyncio.get_running_loop()
        self.last = self._loop.time()
        self._handle = self._loop.call_at(self.last + idle, self._check)

    def _check(self) -> None:
        due = self.last + self._idle
        if self._loop.time() >= due:
            self._body.set_exception(BodyIdle())
        else:
            self._handle = self._loop.call_at(due, self._check)

    def cancel(self) -> None:
        self._handle.cancel()


async def _pump(
    body: StreamReader, batches: BatchWriter, start: int, length: int, idle_timeout: float
) -> str:
    """Move the body into ``batches``; say whether it ended, the client left, or stalled."""
    received = 0
    watchdog = _Watchdog(body, idle_timeout)
    clock = asyncio.get_running_loop().time
    try:
        while True:
            try:
                chunk = await body.readany()
            except BodyIdle:
                return STALLED
            except _READ_ERRORS:
                return GONE
            if not chunk:
                return COMPLETE
            watchdog.last = clock()
            received += len(chunk)
            if start + received > length:
                raise TooLarge(start + received)
            await batches.add(chunk)
    finally:
        watchdog.cancel()


async def _rollback(batches: BatchWriter, start: int) -> None:
    with contextlib.suppress(OSError):
        await batches.settle()
    await asyncio.to_thread(batches.file.truncate, start)


def _abandon(batches: BatchWriter, start: int | None) -> None:
    """Cancelled (server shutting down): close once no write is in flight, first cutting
    back to ``start`` when one is given (a checksummed body that cannot be checked).

    The database still says where the request started; without a checksum, what was
    written is recovered at the next start (:func:`recover_file`), and an append in
    this process cuts it off on opening, so correctness never depends on this running.
    """
    file = batches.file

    def finish(_: object = None) -> None:
        try:
            if start is not None:
                file.truncate(start)
        finally:
            file.close()

    if batches.in_flight is None or batches.in_flight.done():
        finish()
    else:
        batches.in_flight.add_done_callback(finish)
