"""Publishers' reads gathered on a short tick: one wake-up per tick for all of them.

A paced encoder writes one RTMP message at a time (~75 a second at 4 Mbit/s), so with
a read callback per connection the process wakes up for every message, and at a few
publishers those cold wake-ups cost more than parsing the media (issue 20). Once a
publish is accepted, a connection's socket moves here: the transport stops reading
(``pause_reading``; it still writes and closes), and a duplicate of its descriptor is
registered with a selector of our own. One pass per tick asks that selector which
sockets have data and reads each once, into one reusable buffer, handing the bytes to
the connection's ordinary ``data_received``; so the protocol core, its bounds and its
timeouts see exactly the bytes they saw before, only a few milliseconds later.

* **Latency:** at most one tick (``rtmp.read_tick``, ≤ 20 ms; an LL-HLS part is 500 ms).
* **Idle:** a few passes in a row that found nothing stop the ticking; the loop then watches the
  selector's own descriptor and the next byte to arrive starts a pass at once.
* **Backpressure:** a socket is read at most once per pass, at most one buffer; a
  pass that read a lot from any socket is followed by another on the next loop
  iteration, not a tick later (a flat-out publisher is not held to a buffer per
  tick), and what is not read stays in the kernel, which throttles the sender as
  before.
* **End:** end of stream goes to ``eof_received`` (then the transport is closed, as a
  transport does), a read error aborts the transport; the connection's
  ``connection_lost`` then calls :meth:`ReadCoalescer.remove`, which closes our
  duplicate (only then does the kernel let the connection go).
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import selectors
import socket
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger("relaycast.rtmp")

READ_BUFFER_BYTES = 256 * 1024
"""One read per socket per pass, at most this much (uvloop's own read size)."""
BUSY_READ_BYTES = 64 * 1024
"""A read this large (a tick holds ~10 KB of a 4 Mbit/s stream) means a publisher
faster than the tick: the next pass runs on the next loop iteration, so its throughput
is not bounded by the socket's receive buffer per tick."""
IDLE_PASSES = 5
"""Empty passes in a row before the ticking stops: a paced publisher leaves gaps of a
tick or two between messages, and waking up for its next byte costs more than a pass."""


class ReadTarget(Protocol):
    """What a coalesced connection must offer: an asyncio protocol's read side."""

    def data_received(self, data: bytes) -> None: ...

    def eof_received(self) -> bool | None: ...


class _Entry:
    __slots__ = ("sock", "target", "transport")

    def __init__(
        self, sock: socket.socket, target: ReadTarget, transport: asyncio.Transport
    ) -> None:
        self.sock = sock
        self.target = target
        self.transport = transport


class _Poller:
    """Which adopted sockets have bytes: ``epoll`` itself where there is one (a pass asks
    it once, and a list of descriptors is all it needs), else ``selectors``."""

    def __init__(self, use_epoll: bool = True) -> None:
        epoll = getattr(select, "epoll", None) if use_epoll else None
        self._epoll: select.epoll | None = epoll() if epoll is not None else None
        self._selector = selectors.DefaultSelector() if self._epoll is None else None

    def register(self, fd: int) -> None:
        if self._epoll is not None:
            self._epoll.register(fd, select.EPOLLIN)
        elif self._selector is not None:
            self._selector.register(fd, selectors.EVENT_READ)

    def unregister(self, fd: int) -> None:
        if self._epoll is not None:
            self._epoll.unregister(fd)
        elif self._selector is not None:
            self._selector.unregister(fd)

    def ready_function(self) -> Callable[[float], list[tuple[int, int]]]:
        """``f(0)`` lists the registered descriptors with bytes (or an end) to read as
        ``(fd, events)``, without waiting: epoll's own ``poll`` (called from C, no Python
        frame per pass), or an adapter of the selector's answer."""
        if self._epoll is not None:
            return self._epoll.poll
        selector = self._selector
        assert selector is not None
        return lambda timeout: [(key.fd, events) for key, events in selector.select(timeout)]

    def fileno(self) -> int:
        """A descriptor the loop can watch for "some socket is readable", or -1."""
        if self._epoll is not None:
            return self._epoll.fileno()
        fileno = getattr(self._selector, "fileno", None)  # kqueue, devpoll
        return int(fileno()) if fileno is not None else -1

    def close(self) -> None:
        if self._epoll is not None:
            self._epoll.close()
        elif self._selector is not None:
            self._selector.close()


class ReadCoalescer:
    """Reads every adopted connection's socket in one pass per ``tick`` seconds."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        tick: float,
        buffer_bytes: int = READ_BUFFER_BYTES,
        use_epoll: bool = True,
    ) -> None:
        """``use_epoll=False``: the portable ``selectors`` path where epoll exists too
        (for its tests)."""
        self._loop = loop
        self._tick = tick
        self._poller = _Poller(use_epoll)
        self._ready = self._poller.ready_function()
        self._buffer = bytearray(buffer_bytes)
        self._view = memoryview(self._buffer)
        self._entries: dict[int, _Entry] = {}
        self._handle: asyncio.Handle | None = None  # the next pass, when ticking
        self._watching = False  # the loop watches the selector (idle)
        self._watch_fd = self._poller.fileno()
        self._empty = 0  # empty passes in a row
        self.passes = 0
        """Passes run so far (for tests and benchmarks)."""

    def __len__(self) -> int:
        return len(self._entries)

    def adopt(self, transport: asyncio.Transport, target: ReadTarget) -> bool:
        """Read ``transport``'s socket from now on (False: it cannot be, e.g. TLS or no
        socket; the transport then keeps reading as before)."""
        if transport.get_extra_info("sslcontext") is not None:
            return False
        raw = transport.get_extra_info("socket")
        if raw is None:
            return False
        try:
            sock = socket.socket(fileno=os.dup(raw.fileno()))
        except OSError:
            return False
        sock.setblocking(False)
        transport.pause_reading()
        fd = sock.fileno()
        self._entries[fd] = _Entry(sock, target, transport)
        self._poller.register(fd)
        self._schedule(0.0)  # bytes may be waiting already
        return True

    def remove(self, target: ReadTarget) -> None:
        """Stop reading for ``target`` and close our duplicate of its socket (idempotent)."""
        for fd, entry in self._entries.items():
            if entry.target is target:
                del self._entries[fd]
                self._poller.unregister(fd)
                entry.sock.close()
                break
        if not self._entries:
            self._stop()

    def close(self) -> None:
        for entry in list(self._entries.values()):
            self.remove(entry.target)
        self._stop()
        self._poller.close()

    # ------------------------------------------------------------ scheduling

    def _schedule(self, delay: float) -> None:
        """Run a pass ``delay`` seconds from now, unless one is due already."""
        if self._handle is not None:
            return
        self._unwatch()
        if delay <= 0:
            self._handle = self._loop.call_soon(self._pass)
        else:
            self._handle = self._loop.call_later(delay, self._pass)

    def _stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._unwatch()

    def _watch(self) -> None:
        """Idle: let the loop wake us when any adopted socket becomes readable."""
        if not self._watching and self._entries:
            self._loop.add_reader(self._watch_fd, self._woken)
            self._watching = True

    def _unwatch(self) -> None:
        if self._watching:
            self._loop.remove_reader(self._watch_fd)
            self._watching = False

    def _woken(self) -> None:
        self._unwatch()
        self._empty = 0
        if self._handle is None:
            self._pass()

    # ------------------------------------------------------------ one pass

    def _pass(self) -> None:
        """Read every ready socket once. One function on purpose: at a few publishers
        each pass runs cold, and every Python frame in it shows in the CPU per stream."""
        self._handle = None
        self.passes += 1
        entries = self._entries
        view = self._view
        busy = False
        ready = self._ready(0)
        for fd, _events in ready:
            entry = entries.get(fd)
            if entry is None:
                continue
            try:
                size = entry.sock.recv_into(view)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:
                self._failed(entry, exc)
                continue
            if size == 0:
                self._ended(entry)
                continue
            entry.target.data_received(bytes(view[:size]))
            if size >= BUSY_READ_BYTES:  # more is probably waiting
                busy = True
        if not entries:
            return
        if busy:
            self._schedule(0.0)
            return
        self._empty = 0 if ready else self._empty + 1
        if self._empty < IDLE_PASSES or self._watch_fd < 0:
            self._schedule(self._tick)
        else:
            self._watch()

    def _failed(self, entry: _Entry, exc: OSError) -> None:
        """Reset by the peer: what a transport does on a read error."""
        log.debug("rtmp: read failed: %s", exc)
        self.remove(entry.target)
        entry.transport.abort()

    def _ended(self, entry: _Entry) -> None:
        """End of stream: what a transport does (closed unless the protocol keeps it)."""
        self.remove(entry.target)
        if not entry.target.eof_received():
            entry.transport.close()
