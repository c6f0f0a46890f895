"""``send`` over a real socket pair with a stand-in transport: it ends, whatever the file."""

from __future__ import annotations

import asyncio
import socket

from server.vod.sendfile import SegmentFile, send


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
