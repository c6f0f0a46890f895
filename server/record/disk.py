"""Writing recordings off the event loop: one writer thread, a bounded backlog each.

The event loop only hands finished fragments over; the recorder's one writer thread
(shared: the recordings share a disk) does the system calls, in order. The backlog is
bounded in bytes: a recorder that finds it full stops reading the bus, whose reader
then drops to the next keyframe (counted) like any slow reader, so a slow disk never
slows the publisher. The first failed write (disk full, I/O error) stops the
recording: later work is skipped and ``on_error`` hears of it once, on the loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Protocol

_IOV_MAX = 1024  # buffers one writev takes (Linux)


class FileSink(Protocol):
    """An open file of a recording (the lowest level: tests put a failing one here)."""

    def write(self, pieces: Sequence[bytes]) -> None:
        """Write the pieces, in order, one after the other (one fragment)."""

    def close(self) -> None: ...


Opener = Callable[[Path], FileSink]


class OsFile:
    """A file written with plain ``os.writev`` (no Python buffering: a fragment handed
    over is in the kernel, and survives a crash of the process, once written). A
    fragment comes as its pieces (the moof, then every frame's payload) and goes to the
    kernel in one call: joining it first cost a new second-long object per fragment."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)

    def write(self, pieces: Sequence[bytes]) -> None:
        views = [memoryview(p) for p in pieces if p]
        first = 0  # views before this one are written
        while first < len(views):
            done = os.writev(self._fd, views[first : first + _IOV_MAX])
            while first < len(views) and done >= len(views[first]):
                done -= len(views[first])
                first += 1
            if done:
                views[first] = views[first][done:]

    def close(self) -> None:
        try:
            os.fsync(self._fd)
        finally:
            os.close(self._fd)


def open_os_file(path: Path) -> FileSink:
    return OsFile(path)


class DiskWriter:
    """Ordered file work of one recording on a single-thread executor, with a byte-bounded
    backlog."""

    def __init__(
        self,
        executor: Executor,
        opener: Opener,
        max_bytes: int,
        on_error: Callable[[OSError], None],
    ) -> None:
        self._opener = opener
        self._max_bytes = max_bytes
        self._on_error = on_error
        self._executor = executor
        self._queued = 0
        self._room = asyncio.Event()
        self._room.set()
        self._file: FileSink | None = None  # touched on the thread only
        self._broken = False  # thread side: a write failed, nothing more goes to disk
        self.error: OSError | None = None
        self.written = 0

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def full(self) -> bool:
        """The backlog is over its bound (what is handed over now would wait too long)."""
        return self._queued > self._max_bytes

    def open(self, path: Path) -> None:
        """Close the current file (if any) and start writing ``path``."""
        self._submit(self._do_open, path, 0)

    def write(self, pieces: tuple[bytes | memoryview, ...]) -> None:
        """Hand over one fragment (or an init segment) as pieces written in order."""
        self._submit(self._do_write, pieces, sum(len(p) for p in pieces))

    async def room(self) -> None:
        """Wait while the backlog is over its bound."""
        while self._queued > self._max_bytes and not self.failed:
            self._room.clear()
            await self._room.wait()

    async def finish(self) -> None:
        """Close the file once everything handed over is done."""
        loop = asyncio.get_running_loop()
        try:  # after a failure too: the file must be closed
            await loop.run_in_executor(self._executor, self._do_close, None)
        except OSError as exc:
            if self.error is None:
                self.error = exc
                self._on_error(exc)

    # ------------------------------------------------------------ loop side

    def _submit(self, work: Callable[[object], None], arg: object, size: int) -> None:
        if self.failed:
            return
        loop = asyncio.get_running_loop()
        self._queued += size
        future = loop.run_in_executor(self._executor, work, arg)
        future.add_done_callback(lambda f: self._done(f, size))

    def _done(self, future: asyncio.Future[None], size: int) -> None:
        self._queued -= size
        if self._queued <= self._max_bytes:
            self._room.set()
        error = None if future.cancelled() else future.exception()
        if isinstance(error, OSError) and self.error is None:
            self.error = error
            self._room.set()
            self._on_error(error)
        elif error is not None and self.error is None:
            self.error = OSError(str(error))
            self._room.set()
            self._on_error(self.error)
        else:
            self.written += size

    # ------------------------------------------------------------ thread side

    def _do_open(self, path: object) -> None:
        assert isinstance(path, Path)
        self._do_close(None)
        if not self._broken:
            self._guarded(lambda: setattr(self, "_file", self._opener(path)))

    def _do_write(self, pieces: object) -> None:
        assert isinstance(pieces, tuple)
        file = self._file
        if not self._broken and file is not None:
            self._guarded(lambda: file.write(pieces))

    def _guarded(self, work: Callable[[], None]) -> None:
        """A failure breaks the file for good: a fragment after a half-written one
        would make everything after the hole unreadable."""
        try:
            work()
        except BaseException:
            self._broken = True
            raise

    def _do_close(self, _: object) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()
