"""Connections passed between workers (``server.ingest.spread``), over real sockets.

Two workers' spreads run in one process here, listening on one port with
``SO_REUSEPORT`` as ``--workers 2`` does: the kernel hands each connection to either
listener, the busier worker passes what it gets to the other before reading a byte,
and that one serves it, TLS handshake included. The TLS client is Python's ``ssl``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.ingest.spread import Spread, create_board
from tests.tls import self_signed

pytestmark = pytest.mark.interop

CONNECTIONS = 24
"""The kernel lands each on either listener: all 24 on the idle one has odds 2^-24."""


class Who(asyncio.Protocol):
    """Answers any bytes with the index of the worker serving the connection."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert isinstance(self.transport, asyncio.Transport)
        self.transport.write(b"worker %d" % self.index)


@pytest.fixture
def spreads(tmp_path: Path) -> Iterator[tuple[Spread, Spread]]:
    create_board(tmp_path, 2)
    busy, idle = Spread(tmp_path, 0, 2), Spread(tmp_path, 1, 2)
    busy.load = lambda: 1000  # never the least loaded: it passes everything it accepts
    yield busy, idle
    busy.close()
    idle.close()


@pytest.mark.parametrize("kind", ["rtmp", "rtmps"])
async def test_the_busy_worker_passes_connections_and_the_other_serves_them(
    spreads: tuple[Spread, Spread], tmp_path: Path, kind: str
) -> None:
    busy, idle = spreads
    server_tls = client_tls = None
    if kind == "rtmps":
        cert, key = self_signed(tmp_path)
        server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_tls.load_cert_chain(cert, key)
        client_tls = ssl.create_default_context(cafile=str(cert))
    timeout = 5.0 if server_tls else None
    port = busy.listen("127.0.0.1", 0, kind, lambda: Who(0), server_tls, timeout)
    assert idle.listen("127.0.0.1", port, kind, lambda: Who(1), server_tls, timeout) == port

    answers = []
    for _ in range(CONNECTIONS):
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=client_tls), 5
        )
        writer.write(b"who")
        answers.append(await asyncio.wait_for(reader.read(64), 5))
        writer.close()
        await writer.wait_closed()

    assert answers == [b"worker 1"] * CONNECTIONS  # served by the idle one, TLS and all
    assert busy.passed[kind] == idle.received[kind] > 0  # and some crossed over
    assert busy.received[kind] == idle.passed[kind] == 0
