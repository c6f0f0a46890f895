import asyncio
from multiprocessing.connection import Connection

import pytest

from server.encode import WorkerGone, WorkerProcess
from server.media.frame import Frame, TrackKind


def echo(conn: Connection, prefix: str) -> None:
    while True:
        message = conn.recv()
        conn.send((prefix, message))


async def test_messages_round_trip_through_the_child() -> None:
    worker = WorkerProcess(echo, "got", name="echo")
    await worker.start()
    try:
        frame = Frame(TrackKind.VIDEO, "h264", 1, 2, True, b"\x00\x00\x00\x01\x65")
        worker.send(frame)
        worker.send(b"x" * 300_000)  # larger than a pipe buffer: send must not block
        assert await asyncio.wait_for(worker.recv(), 10) == ("got", frame)
        assert await asyncio.wait_for(worker.recv(), 10) == ("got", b"x" * 300_000)
    finally:
        await worker.stop()
    assert not worker.alive


async def test_a_killed_child_is_reported_gone() -> None:
    worker = WorkerProcess(echo, "got", name="echo")
    await worker.start()
    worker.kill()
    with pytest.raises(WorkerGone):
        await asyncio.wait_for(worker.recv(), 10)
    await worker.stop()
    with pytest.raises(WorkerGone):
        worker.send("late")
