"""Cached VOD segments kept in memory files and handed to sockets with sendfile(2).

Two hundred viewers of one segment meant two hundred copies of it from Python into the
kernel: with perf, that copy and the write path around it were the largest share of
the server's CPU per burst. A segment kept in an anonymous memory file (memfd) is sent
by the kernel from its own pages, no copy through Python. uvloop has no
``loop.sendfile`` (aiohttp's ``FileResponse`` falls back to reading and writing chunks
there), so the bytes go to the socket directly: only while the transport's own buffer
is empty (the response stays in order behind its headers), and through a duplicate of
its descriptor, which the loop may watch for writability without disturbing the
transport's own registration.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import weakref
from collections.abc import Iterator


class SegmentFile:
    """One cached segment in an anonymous memory file, closed when the last holder (the
    cache, or a response still sending it) lets go."""

    def __init__(self, data: bytes) -> None:
        fd = os.memfd_create("relaycast-vod-segment", os.MFD_CLOEXEC)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        self.size = len(data)
        weakref.finalize(self, os.close, fd)

    def read(self) -> bytes:
        return os.pread(self.fd, self.size, 0)


def zero_copy_socket(transport: asyncio.BaseTransport) -> socket.socket | None:
    """The plain TCP socket under ``transport``, or None when bytes written to it would
    skip a layer (TLS) or there is no socket to write to."""
    if transport.is_closing() or transport.get_extra_info("sslcontext") is not None:
        return None
    sock = transport.get_extra_info("socket")
    if sock is None or sock.type != socket.SOCK_STREAM:
        return None
    return sock  # type: ignore[no-any-return]


@contextlib.contextmanager
def corked(sock: socket.socket) -> Iterator[None]:
    """Hold partial frames while a response's headers and body go out: the headers
    leave with the first body bytes instead of as a packet of their own (one more
    segment through the stack and one more wake-up of the viewer, per response). A
    socket without TCP (Unix) refuses the option and is used as it is."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
    except OSError:
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(OSError):  # the viewer may be gone
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)


async def send(
    transport: asyncio.WriteTransport, sock: socket.socket, file: SegmentFile, stall: float
) -> bool:
    """Send all of ``file`` after what the transport has written; False if the viewer
    went away or took nothing for ``stall`` seconds (the transport is then aborted, as
    the response can no longer be completed). Writing to the transport's own
    descriptor leaves its registration alone; only a wait for writability needs a
    duplicate, made then: most segments go out in one call, without the two extra
    system calls."""
    loop = asyncio.get_running_loop()
    out = -1
    offset = 0
    try:
        while offset < file.size:
            if transport.is_closing():
                return False
            if transport.get_write_buffer_size() == 0:
                try:
                    sent = os.sendfile(sock.fileno(), file.fd, offset, file.size - offset)
                except BlockingIOError:
                    sent = -1
                except OSError:  # EPIPE, ECONNRESET: the viewer hung up
                    sent = 0
                if sent == 0:  # gone, or (never for a memory file) nothing left to send
                    transport.abort()
                    return False
                if sent > 0:
                    offset += sent
                    continue
            if out < 0:
                out = os.dup(sock.fileno())
            if not await _writable(loop, out, transport, stall):
                transport.abort()
                return False
        return True
    finally:
        if out >= 0:
            os.close(out)


async def _writable(
    loop: asyncio.AbstractEventLoop, fd: int, transport: asyncio.BaseTransport, stall: float
) -> bool:
    """Wait until ``fd`` takes bytes; checks every second that the transport is still
    open (the duplicate keeps the socket alive after the transport closes its own)."""
    deadline = loop.time() + stall
    while not transport.is_closing() and loop.time() < deadline:
        ready: asyncio.Future[bool] = loop.create_future()
        loop.add_writer(fd, _wake, ready, True)
        timer = loop.call_later(min(1.0, deadline - loop.time()), _wake, ready, False)
        try:
            if await ready:
                return True
        finally:
            timer.cancel()
            loop.remove_writer(fd)
    return False


def _wake(ready: asyncio.Future[bool], writable: bool) -> None:
    if not ready.done():
        ready.set_result(writable)
