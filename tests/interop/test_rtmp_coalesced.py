"""Publishers read in coalesced passes (``rtmp.read_tick``, server/ingest/coalesce.py),
over real sockets on 127.0.0.1, on asyncio's own loop and on uvloop (what ``relaycast
serve`` runs): every byte reaches the protocol core in order, end of stream and a reset
end the connection as they did, and a flat-out publisher is not held to a buffer per
tick. The encoders' view (ffmpeg, OBS's librtmp, GStreamer, takeover, reconnect) is
tested by test_rtmp_publish.py and test_rtmp_behaviour.py, which run the default tick."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import uvloop

from server.bus import Registry, StreamGrant
from server.ingest.coalesce import ReadCoalescer
from server.ingest.manager import Claim, IngestManager
from server.ingest.rtmp import RtmpIngestConnection, RtmpIngestServer
from server.protocols import rtmp
from server.settings import IngestSettings, RtmpSettings

pytestmark = pytest.mark.interop


@pytest.fixture(params=["asyncio", "uvloop"])
def event_loop_policy(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoopPolicy]:
    policy = (
        uvloop.EventLoopPolicy() if request.param == "uvloop" else asyncio.DefaultEventLoopPolicy()
    )
    yield policy


class Directory:
    async def authorize(self, stream_key: str) -> StreamGrant | None:
        return StreamGrant(f"ls_{stream_key}", "env_1", True, 0)

    async def session_opened(self, stream_id: str, protocol: str, remote: str, at: datetime) -> str:
        return "ses_1"

    async def stream_live(self, stream_id: str, at: datetime) -> None:
        return None

    async def session_closed(
        self, stream_id: str, session_id: str, at: datetime, bytes_in: int, error: str | None
    ) -> None:
        return None


class RecordingPump:
    """Stands in for the connection's ``RtmpIngestPump``: records the media messages
    the core delivered (instead of parsing FLV tags), hands out the other events."""

    def __init__(self, conn: rtmp.RtmpConnection) -> None:
        self.conn = conn
        self.claim: Claim | None = None
        self.media: list[tuple[str, int, bytes]] = []
        self.events: list[rtmp.Event] = []

    def receive(self, data: bytes, now: float) -> rtmp.Event | None:
        self.conn.receive_data(data, now)
        return self.next_event()

    def next_event(self) -> rtmp.Event | None:
        while True:
            if not self.events:
                self.events = self.conn.events()
                if not self.events:
                    return None
            event = self.events.pop(0)
            if not isinstance(event, rtmp.MediaReceived):
                return event
            self.media.append((event.kind, event.timestamp, bytes(event.payload)))


class Recording(RtmpIngestConnection):
    """An ingest connection whose pump records the media messages."""

    def __init__(self, server: RtmpIngestServer) -> None:
        super().__init__(server)
        self.recorder = RecordingPump(self.conn)
        self.pump = self.recorder  # type: ignore[assignment]

    @property
    def media(self) -> list[tuple[str, int, bytes]]:
        return self.recorder.media


async def serve(poller: str = "epoll", **settings: Any) -> tuple[RtmpIngestServer, int]:
    """``poller="selectors"``: the portable path (systems without epoll)."""
    manager = IngestManager(Directory(), Registry(), IngestSettings())
    server = RtmpIngestServer(manager, RtmpSettings(port=0, **settings))
    server.connection_class = Recording
    if poller == "selectors":
        loop = asyncio.get_running_loop()
        server.coalescer = ReadCoalescer(loop, server.settings.read_tick, use_epoll=False)
    return server, await server.listen("127.0.0.1", 0)


class Publisher:
    """The project's sans-IO client over an asyncio stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.conn = rtmp.RtmpConnection(rtmp.Role.CLIENT)

    @classmethod
    async def connect(cls, port: int, key: str = "k1") -> Publisher:
        publisher = cls(*await asyncio.open_connection("127.0.0.1", port))
        publisher.conn.start("live", f"rtmp://127.0.0.1:{port}/live", key)
        async with asyncio.timeout(10):
            while True:
                await publisher.flush()
                events = publisher.conn.events()
                if any(isinstance(e, rtmp.PublishStarted) for e in events):
                    return publisher
                assert not any(isinstance(e, rtmp.PublishFailed) for e in events), events
                data = await publisher.reader.read(65536)
                assert data, "the server hung up before answering publish"
                publisher.conn.receive_data(data, 0.0)

    async def flush(self) -> None:
        out = self.conn.data_to_send()
        if out:
            self.writer.write(out)
            await self.writer.drain()


def connection(server: RtmpIngestServer) -> Recording:
    (only,) = server.connections
    assert isinstance(only, Recording)
    return only


async def until(condition: Any, within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - polls server state, there is no event
            await asyncio.sleep(0.005)


def payloads(count: int, size: int) -> list[bytes]:
    return [struct.pack(">I", i) * (size // 4) for i in range(count)]


@pytest.mark.parametrize("poller", ["epoll", "selectors"])
async def test_a_publisher_is_read_in_passes_and_every_message_arrives_in_order(
    poller: str,
) -> None:
    server, port = await serve(poller, read_tick=0.02)
    publisher = await Publisher.connect(port)
    try:
        await until(lambda: server.coalescer is not None and len(server.coalescer) == 1)
        sent = payloads(200, 1000)
        for i, body in enumerate(sent):
            publisher.conn.send_video(i * 10, body)
            publisher.conn.send_audio(i * 10, body[:100])
            await publisher.flush()
        got = connection(server)
        await until(lambda: len(getattr(got, "media", [])) == 400)
        assert [m for m in got.media if m[0] == "video"] == [
            ("video", i * 10, body) for i, body in enumerate(sent)
        ]
        assert [m[2] for m in got.media if m[0] == "audio"] == [b[:100] for b in sent]
        assert server.coalescer is not None and server.coalescer.passes > 0
    finally:
        publisher.writer.close()
        await server.close()


async def test_a_flat_out_publisher_is_read_back_to_back_not_once_per_tick() -> None:
    """With a 1 s tick, reading 32 MiB one buffer per tick would take 128 s."""
    server, port = await serve(read_tick=0.02)
    server.coalescer = ReadCoalescer(asyncio.get_running_loop(), 1.0)
    publisher = await Publisher.connect(port)
    try:
        await until(lambda: len(server.coalescer or ()) == 1)
        sent = payloads(128, 256 * 1024)
        for i, body in enumerate(sent):
            publisher.conn.send_video(i, body)
        await publisher.flush()
        got = connection(server)
        await until(lambda: len(getattr(got, "media", [])) == len(sent), within=60)
        assert [m[2] for m in got.media] == sent
    finally:
        publisher.writer.close()
        await server.close()


@pytest.mark.parametrize("poller", ["epoll", "selectors"])
@pytest.mark.parametrize("how", ["eof", "reset"])
async def test_end_of_stream_and_reset_end_the_connection(how: str, poller: str) -> None:
    server, port = await serve(poller, read_tick=0.02)
    publisher = await Publisher.connect(port)
    await until(lambda: server.coalescer is not None and len(server.coalescer) == 1)
    coalescer = server.coalescer
    assert coalescer is not None
    try:
        publisher.conn.send_video(0, b"\x17" * 50)
        await publisher.flush()
        got = connection(server)
        await until(lambda: len(getattr(got, "media", [])) == 1)
        assert got.claim is not None
        if how == "reset":
            raw = publisher.writer.get_extra_info("socket")
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        publisher.writer.close()
        await until(lambda: server.active == 0 and not server.connections)
        assert len(coalescer) == 0
        assert got.claim is None and got.transport is None  # released, as before
    finally:
        await server.close()


async def test_a_zero_tick_reads_each_as_it_arrives() -> None:
    server, port = await serve(read_tick=0)
    publisher = await Publisher.connect(port)
    try:
        publisher.conn.send_video(0, b"\x17" * 50)
        await publisher.flush()
        await until(lambda: len(getattr(connection(server), "media", [])) == 1)
        assert server.coalescer is None
    finally:
        publisher.writer.close()
        await server.close()


@pytest.mark.parametrize("poller", ["epoll", "selectors"])
async def test_a_silent_publisher_stops_the_ticking_and_its_next_byte_restarts_it(
    poller: str,
) -> None:
    server, port = await serve(poller, read_tick=0.02)
    publisher = await Publisher.connect(port)
    try:
        await until(lambda: len(server.coalescer or ()) == 1)
        coalescer = server.coalescer
        assert coalescer is not None
        await asyncio.sleep(0.3)  # IDLE_PASSES empty passes: 0.1 s
        idle = coalescer.passes
        await asyncio.sleep(0.5)  # ticking, this would be 25 more passes
        assert coalescer.passes == idle
        publisher.conn.send_video(0, b"\x17" * 50)
        await publisher.flush()
        got = connection(server)
        await until(lambda: len(getattr(got, "media", [])) == 1)
        assert coalescer.passes > idle
    finally:
        publisher.writer.close()
        await server.close()
