"""The RTMP ingest adapter without sockets: the project's sans-IO client talks to an
``RtmpIngestConnection`` through an in-memory transport; the manager is real, the
store fake."""

from __future__ import annotations

import asyncio
import gc
import weakref
from datetime import datetime
from typing import Any

import pytest

from server.bus import Registry, StreamGrant
from server.ingest.manager import IngestManager
from server.ingest.rtmp import RtmpIngestConnection, RtmpIngestServer
from server.protocols import rtmp
from server.protocols.rtmp.chunk import encode_header
from server.settings import IngestSettings, RtmpSettings

KEY = "sk_goodkey123"


class Directory:
    """A store whose key lookup can be made to fail."""

    def __init__(self, broken: bool = False) -> None:
        self.broken = broken

    async def authorize(self, stream_key: str) -> StreamGrant | None:
        if self.broken:
            raise ConnectionError("database is unreachable")
        return StreamGrant("ls_1", "env_1", True, 0) if stream_key == KEY else None

    async def session_opened(self, stream_id: str, protocol: str, remote: str, at: datetime) -> str:
        return "ses_1"

    async def stream_live(self, stream_id: str, at: datetime) -> None:
        return None

    async def session_closed(
        self, stream_id: str, session_id: str, at: datetime, bytes_in: int, error: str | None
    ) -> None:
        return None


class Transport:
    """What an asyncio transport offers the adapter, writing into a list."""

    def __init__(self, connection: RtmpIngestConnection) -> None:
        self.connection = connection
        self.written: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            asyncio.get_running_loop().call_soon(self.connection.connection_lost, None)

    abort = close

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default


async def publish(server: RtmpIngestServer, key: str) -> tuple[list[rtmp.Event], Transport]:
    """Run a publisher against one adapter connection until it hears an answer."""
    loop = asyncio.get_running_loop()
    connection = RtmpIngestConnection(server)
    transport = Transport(connection)
    connection.connection_made(transport)  # type: ignore[arg-type]
    client = rtmp.RtmpConnection(rtmp.Role.CLIENT, now=loop.time())
    client.start("live", "rtmp://127.0.0.1/live", key)
    events: list[rtmp.Event] = []
    for _ in range(100):
        up = client.data_to_send()
        if up:
            connection.data_received(up)
        await asyncio.sleep(0.01)
        down, transport.written = b"".join(transport.written), []
        if down:
            client.receive_data(down, loop.time())
        events += client.events()
        if any(isinstance(e, rtmp.PublishStarted | rtmp.PublishFailed) for e in events):
            break
    return events, transport


def rig(directory: Directory, **settings: Any) -> RtmpIngestServer:
    manager = IngestManager(directory, Registry(), IngestSettings())
    return RtmpIngestServer(manager, RtmpSettings(port=0, **settings))


async def test_a_store_failure_refuses_the_publisher(caplog: pytest.LogCaptureFixture) -> None:
    server = rig(Directory(broken=True))
    loop = asyncio.get_running_loop()
    unretrieved: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: unretrieved.append(context))
    events, transport = await publish(server, KEY)
    (failed,) = [e for e in events if isinstance(e, rtmp.PublishFailed)]
    assert "try again later" in failed.description
    assert server.counters.failures["auth_error"] == 1
    assert "stream key check failed" in caplog.text
    await asyncio.sleep(0.01)
    assert transport.closing and not server.connections
    assert unretrieved == []


async def test_unknown_keys_are_refused_ever_more_slowly_valid_keys_at_once() -> None:
    server = rig(Directory(), refusal_delay_max=0.2)
    loop = asyncio.get_running_loop()
    took = []
    for _ in range(5):
        started = loop.time()
        events, _ = await publish(server, "sk_guess")
        assert any(isinstance(e, rtmp.PublishFailed) for e in events)
        took.append(loop.time() - started)
    assert max(took[:3]) < 0.15 and min(took[3:]) >= 0.2, took
    assert server.counters.throttled == 2
    started = loop.time()
    events, _ = await publish(server, KEY)
    assert any(isinstance(e, rtmp.PublishStarted) for e in events)
    assert loop.time() - started < 0.15


async def test_a_closed_connection_returns_its_reserved_bytes() -> None:
    server = rig(Directory())
    connection = RtmpIngestConnection(server)
    transport = Transport(connection)
    connection.connection_made(transport)  # type: ignore[arg-type]
    client = rtmp.RtmpConnection(rtmp.Role.CLIENT)
    client.start("live", "rtmp://127.0.0.1/live", KEY)
    connection.data_received(client.data_to_send())
    connection.data_received(bytes(1536))  # C2
    header = encode_header(0, 6, 0, 500_000, 9, 1)
    connection.data_received(header + bytes(1000))
    assert server.budget.used == 500_000
    connection.connection_lost(None)
    assert server.budget.used == 0


async def test_a_closed_connection_is_freed_without_the_cyclic_collector() -> None:
    """A handshake flood closes thousands of connections; left in reference cycles
    (transport <-> protocol, timer -> bound method) they wait for a full collection
    and fragment the heap meanwhile."""
    server = rig(Directory(), handshake_timeout=5.0)
    connection = RtmpIngestConnection(server)
    transport = Transport(connection)
    connection.connection_made(transport)  # type: ignore[arg-type]
    connection.data_received(b"\x03" + bytes(1536))  # C0C1: the handshake deadline is armed
    assert connection.timer.armed
    gone = weakref.ref(connection)
    gc.disable()
    try:
        connection.connection_lost(None)
        del connection, transport
        assert gone() is None
    finally:
        gc.enable()
