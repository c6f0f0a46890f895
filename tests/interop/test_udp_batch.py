"""The SRT listener's batched UDP read (server/ingest/srt_udp.py): every queued
datagram in order with its sender's address, within the bound, on real sockets (the
kernel is the peer)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from server.ingest import srt_udp


def _bound(family: socket.AddressFamily, host: str) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    return sock


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket, socket.socket]]:
    server = _bound(socket.AF_INET, "127.0.0.1")
    one = _bound(socket.AF_INET, "127.0.0.1")
    two = _bound(socket.AF_INET, "127.0.0.1")
    yield server, one, two
    for sock in (server, one, two):
        sock.close()


def _send(sender: socket.socket, to: Any, payloads: list[bytes]) -> None:
    for payload in payloads:
        sender.sendto(payload, to)


def test_an_empty_socket_gives_an_empty_batch(pair: Any) -> None:
    server, _, _ = pair
    assert srt_udp.receive_batch(server, 64) == []


def test_datagrams_in_order_with_each_senders_address(pair: Any) -> None:
    server, one, two = pair
    to = server.getsockname()
    sent: list[tuple[bytes, Any]] = []
    for i in range(150):
        sender = one if i % 3 else two
        payload = bytes([i % 256]) * (1 + i * 9 % 1400)
        sender.sendto(payload, to)
        sent.append((payload, sender.getsockname()))
    got = srt_udp.receive_batch(server, 1000)
    assert got == sent
    assert all(type(data) is bytes for data, _ in got)


def test_the_limit_leaves_the_rest_queued(pair: Any) -> None:
    server, one, _ = pair
    payloads = [i.to_bytes(2, "big") for i in range(100)]
    _send(one, server.getsockname(), payloads)
    receive = srt_udp.receive_batch
    first = receive(server, 70)
    second = receive(server, 70)
    assert [d for d, _ in first] == payloads[:70]
    assert [d for d, _ in second] == payloads[70:]
    assert receive(server, 70) == []


def test_oversized_datagrams_are_truncated(pair: Any) -> None:
    server, one, _ = pair
    one.sendto(b"\xab" * 4000, server.getsockname())
    [(data, _)] = srt_udp.receive_batch(server, 8)
    assert data == b"\xab" * srt_udp.MAX_DATAGRAM


def test_ipv6_addresses() -> None:
    try:
        server = _bound(socket.AF_INET6, "::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    sender = _bound(socket.AF_INET6, "::1")
    try:
        sender.sendto(b"six", server.getsockname())
        assert srt_udp.receive_batch(server, 8) == [(b"six", sender.getsockname())]
    finally:
        server.close()
        sender.close()


class _Collector:
    def __init__(self) -> None:
        self.batches: list[srt_udp.Datagrams] = []
        self.errors: list[Exception] = []
        self.transport: asyncio.BaseTransport | None = None
        self.got = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagrams_received(self, datagrams: srt_udp.Datagrams) -> None:
        self.batches.append(datagrams)
        if sum(map(len, self.batches)) >= 300:
            self.got.set()

    def error_received(self, exc: Exception) -> None:
        self.errors.append(exc)


async def test_the_endpoint_hands_over_batches_and_sends(pair: Any) -> None:
    server, one, _ = pair
    loop = asyncio.get_running_loop()
    protocol = _Collector()
    endpoint = srt_udp.BatchedUdpEndpoint(loop, server, protocol)
    assert protocol.transport is endpoint
    _send(one, server.getsockname(), [i.to_bytes(2, "big") for i in range(300)])
    await asyncio.wait_for(protocol.got.wait(), 5)
    datagrams = [d for batch in protocol.batches for d in batch]
    assert [d for d, _ in datagrams] == [i.to_bytes(2, "big") for i in range(300)]
    assert len(protocol.batches) < 300  # several per wake-up
    assert max(map(len, protocol.batches)) <= srt_udp.BATCH
    endpoint.sendto(b"answer", one.getsockname())
    for _ in range(100):
        try:
            assert one.recvfrom(64) == (b"answer", server.getsockname())
            break
        except BlockingIOError:
            await asyncio.sleep(0.01)
    else:
        pytest.fail("the answer never arrived")
    endpoint.close()
    assert endpoint.is_closing() and server.fileno() == -1
    assert not protocol.errors


async def test_paused_reading_leaves_datagrams_for_drain(pair: Any) -> None:
    """While paused no datagram wakes the loop: they wait in the socket until the
    owner drains them (in batches of at most BATCH, up to its limit); resumed, the
    loop reads them again by itself."""
    server, one, _ = pair
    protocol = _Collector()
    endpoint = srt_udp.BatchedUdpEndpoint(asyncio.get_running_loop(), server, protocol)
    assert endpoint.reading and endpoint.receive_buffer >= 1 << 20
    endpoint.pause_reading()
    endpoint.pause_reading()  # idempotent
    assert not endpoint.reading
    payloads = [i.to_bytes(2, "big") for i in range(600)]
    _send(one, server.getsockname(), payloads)
    await asyncio.sleep(0.05)
    assert protocol.batches == []
    assert endpoint.drain(400) == 400
    assert max(map(len, protocol.batches)) <= srt_udp.BATCH
    assert endpoint.drain(1000) == 200
    assert endpoint.drain(1000) == 0
    assert [d for batch in protocol.batches for d, _ in batch] == payloads
    protocol.batches.clear()
    endpoint.resume_reading()
    assert endpoint.reading
    _send(one, server.getsockname(), payloads[:300])
    await asyncio.wait_for(protocol.got.wait(), 5)
    assert [d for batch in protocol.batches for d, _ in batch] == payloads[:300]
    endpoint.pause_reading()
    endpoint.close()  # paused: nothing to unregister, and no error
    endpoint.resume_reading()  # closed: stays closed
    assert not endpoint.reading and endpoint.is_closing()
