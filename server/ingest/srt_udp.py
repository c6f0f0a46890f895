"""The SRT listener's UDP socket, read in batches (issue 21).

One socket carries every caller of a listening port, so the datagram path decides
SRT throughput. An asyncio datagram endpoint wakes Python once per datagram (with
uvloop that wake-up was about half of the server's CPU at 10 streams); here one
``add_reader`` callback drains the socket, up to :data:`BATCH` datagrams per wake-up
(a bound, so that timers and other sockets get their turn under a flood), and hands
the whole batch to the protocol. The owner may pause that callback and
:meth:`~BatchedUdpEndpoint.drain` the socket from a timer of its own instead (the SRT
listener's tick does under light traffic: no wake-up per datagram at all).

The read is a loop of ``sock.recvfrom`` until the socket is empty: what costs is the
wake-up per datagram, and that is gone. ``recvmmsg(2)`` (many datagrams per system
call, from a C module) was tried and measured no gain over this loop, in the SRT
ingest scenario or per datagram (issue 21), so it is not kept. Sends go straight to
the socket; when its buffer is full they wait in a bounded queue
flushed by a writer callback (the datagram transport's behaviour), and beyond the
bound they are dropped and counted (SRT retransmits what matters).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from typing import Any, Protocol

log = logging.getLogger("relaycast.srt")

BATCH = 256
"""Datagrams read per wake-up at most (about 340 KB at SRT's 1316-byte payloads)."""
MAX_DATAGRAM = 2048
"""Receive size: above SRT's 1500-byte MTU (a longer datagram is truncated)."""
SEND_QUEUE = 4096
"""Datagrams waiting for a full socket buffer at most (then dropped, counted)."""

Datagrams = list[tuple[bytes, Any]]


def receive_batch(sock: socket.socket, limit: int) -> Datagrams:
    """Up to ``limit`` queued datagrams, [] when none is. An error after some
    datagrams is left for the next read (they are handed over first)."""
    out: Datagrams = []
    recvfrom = sock.recvfrom
    append = out.append
    try:
        while len(out) < limit:
            append(recvfrom(MAX_DATAGRAM))
    except (BlockingIOError, InterruptedError):
        pass
    except OSError:
        if not out:
            raise
    return out


class BatchProtocol(Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None: ...

    def datagrams_received(self, datagrams: Datagrams) -> None: ...

    def error_received(self, exc: Exception) -> None: ...


class BatchedUdpEndpoint(asyncio.DatagramTransport):
    """A datagram transport over a bound non-blocking socket that hands its protocol
    every datagram of a wake-up at once (``datagrams_received``)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol: BatchProtocol,
    ) -> None:
        super().__init__()
        sock.setblocking(False)
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._protocol = protocol
        self._queue: deque[tuple[bytes, Any]] = deque()
        self._writing = False
        self._closed = False
        self._reading = True
        self.send_dropped = 0
        # what the kernel granted (it reports twice the SO_RCVBUF it accepted)
        self.receive_buffer = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2
        protocol.connection_made(self)
        loop.add_reader(self._fd, self._readable)

    def _readable(self) -> None:
        self.drain(BATCH)

    def drain(self, limit: int) -> int:
        """Hand the protocol up to ``limit`` queued datagrams, :data:`BATCH` at a time
        (what a wake-up does; the owner calls it itself while reading is paused).
        Returns how many there were."""
        got = 0
        while got < limit and not self._closed:
            try:
                datagrams = receive_batch(self._sock, min(BATCH, limit - got))
            except OSError as exc:  # an ICMP error: the caller's timeout cleans up
                self._protocol.error_received(exc)
                break
            if not datagrams:
                break
            got += len(datagrams)
            self._protocol.datagrams_received(datagrams)
            if len(datagrams) < BATCH:
                break
        return got

    @property
    def reading(self) -> bool:
        return self._reading

    def pause_reading(self) -> None:
        """No wake-up per datagram: they wait in the socket for :meth:`drain`."""
        if self._reading and not self._closed:
            self._reading = False
            self._loop.remove_reader(self._fd)

    def resume_reading(self) -> None:
        if not self._reading and not self._closed:
            self._reading = True
            self._loop.add_reader(self._fd, self._readable)

    # ------------------------------------------------------------ DatagramTransport

    def sendto(self, data: Any, addr: Any = None) -> None:
        if self._closed:
            return
        if self._queue:
            self._enqueue(bytes(data), addr)
            return
        try:
            self._sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self._enqueue(bytes(data), addr)
        except OSError as exc:
            self._protocol.error_received(exc)

    def _enqueue(self, data: bytes, addr: Any) -> None:
        if len(self._queue) >= SEND_QUEUE:
            self.send_dropped += 1
            return
        self._queue.append((data, addr))
        if not self._writing:
            self._writing = True
            self._loop.add_writer(self._fd, self._writable)

    def _writable(self) -> None:
        queue, sendto = self._queue, self._sock.sendto
        while queue:
            data, addr = queue[0]
            try:
                sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._protocol.error_received(exc)
            queue.popleft()
        self._writing = False
        self._loop.remove_writer(self._fd)

    def get_write_buffer_size(self) -> int:
        return sum(len(data) for data, _ in self._queue)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket":
            return self._sock
        if name == "sockname":
            return self._sock.getsockname()
        return default

    def is_closing(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._reading:
            self._loop.remove_reader(self._fd)
        if self._writing:
            self._loop.remove_writer(self._fd)
        self._queue.clear()
        self._sock.close()

    def abort(self) -> None:
        self.close()
