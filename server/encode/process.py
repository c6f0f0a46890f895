"""A worker process for media work, spoken to from the event loop without blocking it.

The child gets one end of a ``multiprocessing.Pipe`` and uses its ordinary blocking
``send``/``recv``. The parent speaks the same framing (a 4-byte big-endian length, then
a pickle) over an asyncio stream on its end, so a slow child fills a bounded write
buffer the caller can see (``backlog``) instead of blocking the loop in ``send``.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import pickle
import signal
import socket
import struct
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

_HEADER = struct.Struct("!i")
MAX_MESSAGE = 64 * 1024 * 1024
"""A bound on one message; a larger length header means a broken child."""


class WorkerGone(Exception):
    """The worker process exited or its pipe closed."""


class WorkerProcess:
    """One child running ``target(conn, *args)``; create, ``await start()``, talk, stop."""

    def __init__(self, target: Callable[..., None], *args: Any, name: str) -> None:
        self.name = name
        self._target = target
        self._args = args
        self._process: multiprocessing.process.BaseProcess | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def start(self) -> None:
        """Spawn the child (a fresh interpreter: no inherited event loop or sockets)."""
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe(duplex=True)
        process = ctx.Process(
            target=_run, args=(self._target, child, *self._args), name=self.name, daemon=True
        )
        process.start()
        child.close()
        sock = socket.socket(fileno=os.dup(parent.fileno()))
        parent.close()
        self._process = process
        self._reader, self._writer = await asyncio.open_unix_connection(sock=sock)

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def backlog(self) -> int:
        """Bytes written but not yet taken by the child."""
        if self._writer is None or self._writer.transport.is_closing():
            return 0
        return self._writer.transport.get_write_buffer_size()

    def send(self, message: object) -> None:
        """Queue ``message`` for the child; never blocks (check ``backlog`` to bound it)."""
        writer = self._writer
        if writer is None or writer.transport.is_closing() or not self.alive:
            raise WorkerGone(f"{self.name}: worker is not running")
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        writer.write(_HEADER.pack(len(data)) + data)

    async def recv(self) -> object:
        """The child's next message."""
        reader = self._reader
        if reader is None:
            raise WorkerGone(f"{self.name}: worker is not running")
        try:
            (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
            if not 0 <= size <= MAX_MESSAGE:
                raise WorkerGone(f"{self.name}: bad message length {size}")
            # The child is our own code, spawned by us: its pickles are trusted.
            return pickle.loads(await reader.readexactly(size))  # noqa: S301
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise WorkerGone(f"{self.name}: worker pipe closed") from exc

    def kill(self) -> None:
        """SIGKILL the child now; idempotent."""
        if self._process is not None and self._process.pid is not None and self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._process.pid, signal.SIGKILL)

    async def stop(self, grace: float = 2.0) -> None:
        """Close the pipe (the child sees EOF and should return), then reap it."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        process = self._process
        if process is None:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, process.join, grace)
        if process.is_alive():
            self.kill()
            await loop.run_in_executor(None, process.join, grace)
        process.close()
        self._process = None


def _run(target: Callable[..., None], conn: Connection, *args: Any) -> None:
    """Child entry: the parent's Ctrl-C is the parent's to handle; EOF ends the child."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(EOFError, BrokenPipeError, ConnectionResetError):
        target(conn, *args)
