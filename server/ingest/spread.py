"""RTMP connections spread evenly over the workers of one machine (``--workers N``).

With ``SO_REUSEPORT`` the kernel picks a worker's listening socket for each new
connection by a hash of its addresses: 150 publishers landed 64 / 86 on two workers,
and the installation is full when its busiest worker is. So each worker still accepts
on the shared port, but a worker that already holds more connections than the least
loaded one passes the new connection to it before reading a byte (TLS not begun):
the descriptor crosses a Unix datagram socket (``SCM_RIGHTS``) and the sibling
serves it as if it had accepted it. A passed connection is never passed again, and a
sibling that cannot take it (gone, its socket full) leaves it where it landed.

Each worker publishes its load (its RTMP and SRT connections) in one 8-byte slot of a
small file the workers share (``mmap``); only its worker writes a slot, except that a
worker passing a connection adds one to the receiver's slot at once, so a burst of
connections does not all go to the same sibling before it has counted the first.

SRT callers are not passed: SRT is UDP, and the kernel hashes each caller's addresses
to one worker's socket for its handshake and every datagram after (the group of
sockets never changes while the workers run), so a caller cannot be moved without
relaying its datagrams. They count in their worker's load, so RTMP connections even
out what the hash did to SRT.

A connection is counted from its accept, before anyone knows whether it publishes or
plays: a player is cheaper than a publisher, but a balance that waited for the
``publish`` command would see a burst of connections too late.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import logging
import mmap
import os
import socket
import ssl
import struct
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("relaycast.spread")

SLOT = struct.Struct("q")
ACCEPTS_PER_WAKEUP = 64
"""Connections accepted per readiness callback: a burst cannot hold the loop."""
REFRESH_SECONDS = 0.5
"""How often a worker rewrites its slot (connections ended, SRT callers arrived)."""
BACKLOG = 128
CLOSED = 1 << 62
"""The load a stopping worker shows, so that no sibling passes it a connection."""


def pick(loads: Sequence[int], me: int) -> int | None:
    """The worker a new connection arriving at worker ``me`` goes to, ``None`` to
    keep it: kept unless ``me`` already holds more than the least loaded worker
    (so the spread stays within one connection)."""
    least = min(range(len(loads)), key=loads.__getitem__)
    return None if loads[me] <= loads[least] else least


def board_path(directory: Path) -> Path:
    return directory / "load"


def socket_path(directory: Path, index: int) -> Path:
    return directory / f"{index}.sock"


def create_board(directory: Path, workers: int) -> None:
    """The parent's part: one zeroed slot per worker, before any worker starts."""
    board_path(directory).write_bytes(bytes(SLOT.size * workers))


class LoadBoard:
    """The shared slots; reads may see a sibling's write half-applied on no platform
    we run on (aligned 8-byte stores), and a stale load only costs one uneven step."""

    def __init__(self, path: Path, workers: int) -> None:
        with path.open("r+b") as file:
            self._map = mmap.mmap(file.fileno(), SLOT.size * workers)
        self.workers = workers

    def loads(self) -> list[int]:
        return [SLOT.unpack_from(self._map, i * SLOT.size)[0] for i in range(self.workers)]

    def set(self, index: int, load: int) -> None:
        SLOT.pack_into(self._map, index * SLOT.size, load)

    def add(self, index: int, count: int) -> None:
        self.set(index, SLOT.unpack_from(self._map, index * SLOT.size)[0] + count)

    def close(self) -> None:
        self._map.close()


Serve = Callable[[socket.socket], None]


class Spread:
    """One worker's side: its accepting sockets, the passing, its slot."""

    def __init__(self, directory: Path, index: int, workers: int) -> None:
        self.directory = directory
        self.index = index
        self.workers = workers
        self.load: Callable[[], int] = lambda: 0
        """This worker's connections (set by the composition root: RTMP + SRT)."""
        self.pending = 0
        """Connections kept or received and not yet handed to their protocol (TLS)."""
        self.passed: Counter[str] = Counter()
        """Connections handed to a sibling, by listener kind (``rtmp``, ``rtmps``)."""
        self.received: Counter[str] = Counter()
        """Connections a sibling handed to this worker, by listener kind."""
        self._board: LoadBoard | None = None
        self._inbox: socket.socket | None = None
        self._listeners: list[socket.socket] = []
        self._serve: dict[bytes, Serve] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._refresh: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def _open(self) -> asyncio.AbstractEventLoop:
        if self._loop is not None:
            return self._loop
        loop = self._loop = asyncio.get_running_loop()
        self._board = LoadBoard(board_path(self.directory), self.workers)
        path = socket_path(self.directory, self.index)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        inbox = self._inbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        inbox.setblocking(False)
        inbox.bind(str(path))
        loop.add_reader(inbox.fileno(), self._receive)
        self._refresh = loop.call_later(REFRESH_SECONDS, self._on_refresh)
        return loop

    def listen(
        self,
        host: str,
        port: int,
        kind: str,
        factory: Callable[[], asyncio.Protocol],
        tls: ssl.SSLContext | None = None,
        handshake_timeout: float | None = None,
    ) -> int:
        """Accept on ``host:port`` (shared with the siblings); ``kind`` names the
        listener across workers (each listens on the same ones). Returns the port."""
        loop = self._open()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.listen(BACKLOG)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._listeners.append(sock)
        name = kind.encode()
        self._serve[name] = lambda conn: self._spawn(
            loop.connect_accepted_socket(
                factory, conn, ssl=tls, ssl_handshake_timeout=handshake_timeout
            )
        )
        loop.add_reader(sock.fileno(), self._accept, sock, name)
        return int(sock.getsockname()[1])

    def _spawn(self, opening: Coroutine[Any, Any, object]) -> None:
        self.pending += 1
        task = asyncio.ensure_future(self._opened(opening))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _opened(self, opening: Coroutine[Any, Any, object]) -> None:
        try:
            await opening
        except (OSError, TimeoutError) as exc:  # a TLS handshake that failed, mostly
            log.debug("spread: a connection closed while opening: %s", exc)
        finally:
            self.pending -= 1

    def _mine(self) -> int:
        return self.load() + self.pending

    def _accept(self, listener: socket.socket, name: bytes) -> None:
        for _ in range(ACCEPTS_PER_WAKEUP):
            try:
                conn, _addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and the like: the backlog keeps it meanwhile
                log.warning("spread: accept failed: %s; trying again in 1 s", exc)
                self._rest(listener, name)
                return
            conn.setblocking(False)
            assert self._board is not None
            self._board.set(self.index, self._mine())
            target = pick(self._board.loads(), self.index)
            if target is not None and self._pass(target, name, conn):
                continue
            self._serve[name](conn)
            self._board.set(self.index, self._mine())

    def _rest(self, listener: socket.socket, name: bytes) -> None:
        """Stop watching a listener for a second (as asyncio's own servers do): a
        readiness that accept cannot serve would otherwise spin the loop."""
        loop = self._loop
        assert loop is not None
        loop.remove_reader(listener.fileno())

        def resume() -> None:
            if listener in self._listeners:
                loop.add_reader(listener.fileno(), self._accept, listener, name)

        loop.call_later(1.0, resume)

    def _pass(self, target: int, name: bytes, conn: socket.socket) -> bool:
        assert self._inbox is not None and self._board is not None
        try:
            # not socket.send_fds: Python 3.11's ignores its address
            self._inbox.sendmsg(
                [name],
                [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [conn.fileno()]))],
                0,
                str(socket_path(self.directory, target)),
            )
        except OSError as exc:  # gone or full: served here
            log.debug("spread: could not pass a connection to worker %d: %s", target, exc)
            return False
        self._board.add(target, 1)
        self.passed[name.decode()] += 1
        conn.close()
        return True

    def _receive(self) -> None:
        assert self._inbox is not None
        for _ in range(ACCEPTS_PER_WAKEUP):
            try:
                msg, fds, _flags, _addr = socket.recv_fds(self._inbox, 64, 4)
            except (BlockingIOError, InterruptedError):
                return
            for fd in fds:
                conn = socket.socket(fileno=fd)
                serve = self._serve.get(msg)
                if serve is None:  # a listener this worker lacks: cannot happen
                    conn.close()
                    continue
                conn.setblocking(False)
                self.received[msg.decode()] += 1
                serve(conn)
            if self._board is not None:
                self._board.set(self.index, self._mine())

    def _on_refresh(self) -> None:
        if self._board is not None and self._loop is not None:
            self._board.set(self.index, self._mine())
            self._refresh = self._loop.call_later(REFRESH_SECONDS, self._on_refresh)

    def close(self) -> None:
        """Stop accepting and receiving (open connections go on)."""
        loop = self._loop
        if loop is None:
            return
        if self._board is not None:  # the siblings stop choosing this worker
            self._board.set(self.index, CLOSED)
        if self._refresh is not None:
            self._refresh.cancel()
        for sock in self._listeners:
            loop.remove_reader(sock.fileno())
            sock.close()
        self._listeners.clear()
        if self._inbox is not None:
            loop.remove_reader(self._inbox.fileno())
            self._inbox.close()
            self._inbox = None
            with contextlib.suppress(OSError):
                os.unlink(socket_path(self.directory, self.index))
        for task in list(self._tasks):
            task.cancel()
        if self._board is not None:
            self._board.close()
            self._board = None
        self._loop = None
