"""``send`` over a real socket pair with a stand-in transport: it ends, whatever the file."""

from __future__ import annotations

import asyncio
import socket

from server.vod.sendfile import SegmentFile, corked, send


class Transport:
    def __init__(self) -> None:
        self.aborted = False

    def is_closing(self) -> bool:
        return self.aborted

    def get_write_buffer_size(self) -> int:
        return 0

    def abort(self) -> None:
        self.aborted = True


async def test_a_whole_file_arrives() -> None:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    data = bytes(range(256)) * 400
    transport = Transport()
    try:
        reader = asyncio.create_task(asyncio.to_thread(_read, theirs, len(data)))
        assert await send(transport, ours, SegmentFile(data), 5.0)  # type: ignore[arg-type]
        assert await reader == data and not transport.aborted
    finally:
        ours.close()
        theirs.close()


async def test_a_file_shorter_than_its_size_ends_the_response_not_the_loop() -> None:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    file = SegmentFile(b"x" * 1000)
    file.size = 5000  # what a truncated file would look like: sendfile finds its end
    transport = Transport()
    try:
        sent = await asyncio.wait_for(send(transport, ours, file, 5.0), 2)  # type: ignore[arg-type]
        assert sent is False and transport.aborted
    finally:
        ours.close()
        theirs.close()


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        data += sock.recv(65536)
    return data


async def test_headers_and_body_leave_together_and_nothing_is_held_after() -> None:
    """Corked, a header write waits for the body (one segment for both); uncorked at
    the end, what is left goes out at once."""
    server = socket.create_server(("127.0.0.1", 0))
    theirs = socket.create_connection(server.getsockname())
    ours, _ = server.accept()
    ours.setblocking(False)
    theirs.settimeout(0.2)
    try:
        with corked(ours):
            ours.send(b"HTTP/1.1 200 OK\r\n\r\n")
            try:
                early = theirs.recv(100)
            except TimeoutError:
                early = b""
            assert await send(Transport(), ours, SegmentFile(b"body"), 5.0)  # type: ignore[arg-type]
        theirs.settimeout(5.0)
        assert early == b"" and _read(theirs, 23) == b"HTTP/1.1 200 OK\r\n\r\nbody"
    finally:
        for sock in (ours, theirs, server):
            sock.close()


def test_a_unix_socket_is_not_corked() -> None:
    ours, theirs = socket.socketpair()
    try:
        with corked(ours):  # no TCP_CORK on a Unix socket: no error either
            ours.send(b"x")
        assert theirs.recv(1) == b"x"
    finally:
        ours.close()
        theirs.close()
