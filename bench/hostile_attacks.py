"""The attacks of ``bench.hostile``: cheap for the attacker, each aimed at one bound.

TCP attacks open connections from ``ATTACK_HOST`` (another loopback address, so a
per-address connection cap meets the attackers and not the legit publisher or the
bench's own API calls) and keep each one in the state the attack is about until the
server closes it or the attack ends. Each connection ends one of three ways, counted
per attack: ``server-closed`` (EOF: the server gave up on it, with how long that took),
``server-reset``, or ``held-to-end`` (the server still kept it when the attack
stopped, with its age: older than the server's timeouts means the bound did not act).
``sent_bytes`` counts what was trickled after the opening. UDP attacks count datagrams sent and
answers received.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import statistics
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

from server.protocols import srt
from server.protocols.rtmp import commands
from server.protocols.rtmp.chunk import encode_header, encode_message
from server.protocols.rtmp.handshake import PACKET_SIZE
from server.protocols.rtmp.messages import MessageType, set_chunk_size

ATTACK_HOST = "127.0.0.2"
C0C1 = b"\x03" + bytes(8) + os.urandom(PACKET_SIZE - 8)
C2 = bytes(PACKET_SIZE)
CONNECT_TIMEOUT = 5.0


@dataclass
class Tally:
    """What one attack did and how the server answered."""

    name: str
    made: int = 0
    failed: int = 0
    ended: Counter[str] = field(default_factory=Counter)
    server_closed_after_s: list[float] = field(default_factory=list)
    held_ages_s: list[float] = field(default_factory=list)
    sent_bytes: int = 0
    answers: int = 0

    def report(self) -> dict[str, Any]:
        lifetimes = self.server_closed_after_s
        return {
            "made": self.made,
            "connect_failed": self.failed,
            "ended": dict(self.ended),
            "server_closed_after_s": {
                "median": round(statistics.median(lifetimes), 2),
                "max": round(max(lifetimes), 2),
            }
            if lifetimes
            else None,
            "held_to_end_max_age_s": round(max(self.held_ages_s), 2) if self.held_ages_s else None,
            "sent_bytes": self.sent_bytes,
            "answers": self.answers,
        }


Opening = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _until_closed(reader: asyncio.StreamReader) -> str:
    try:
        while await reader.read(65536):
            pass
    except (ConnectionResetError, BrokenPipeError):
        return "server-reset"
    return "server-closed"


async def hold_connection(
    tally: Tally,
    port: int,
    opening: Opening,
    trickle: Iterator[bytes],
    interval: float,
    stop: asyncio.Event,
) -> None:
    """One attacking connection: ``opening``, then a piece of ``trickle`` every
    ``interval`` seconds until the server closes it or ``stop`` is set."""
    loop = asyncio.get_running_loop()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, local_addr=(ATTACK_HOST, 0)),
            CONNECT_TIMEOUT,
        )
    except (OSError, TimeoutError):
        tally.failed += 1
        return
    tally.made += 1
    started = loop.time()
    closed: asyncio.Task[str] | None = None
    stopping = asyncio.ensure_future(stop.wait())
    try:
        try:
            await opening(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            tally.ended["server-closed"] += 1
            tally.server_closed_after_s.append(loop.time() - started)
            return
        closed = asyncio.ensure_future(_until_closed(reader))
        while not stop.is_set() and not closed.done():
            piece = next(trickle, b"")
            if piece:
                with contextlib.suppress(ConnectionError):
                    writer.write(piece)
                    tally.sent_bytes += len(piece)
            await asyncio.wait([closed, stopping], timeout=interval, return_when="FIRST_COMPLETED")
        if closed.done():
            how = closed.result()
            tally.ended[how] += 1
            tally.server_closed_after_s.append(loop.time() - started)
        else:
            tally.ended["held-to-end"] += 1
            tally.held_ages_s.append(loop.time() - started)
    finally:
        stopping.cancel()
        if closed is not None:
            closed.cancel()
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def spawn(
    count: int, rate: float, stop: asyncio.Event, one: Callable[[], Coroutine[Any, Any, None]]
) -> None:
    """Start ``count`` connections at ``rate`` a second (or until stopped); wait for all."""
    tasks: list[asyncio.Task[None]] = []
    for _ in range(count):
        if stop.is_set():
            break
        tasks.append(asyncio.create_task(one()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0 / rate)
    await asyncio.gather(*tasks)


# ------------------------------------------------------------------ openings


async def nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    return None


async def c0c1_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The handshake started and never finished (C2 never comes)."""
    writer.write(C0C1)


async def rtmp_handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(C0C1)
    await reader.readexactly(1 + 2 * PACKET_SIZE)
    writer.write(C2)


PARTIAL_CHUNK = 65536


def partial_messages_wire(streams: int, announced: int, sent: int) -> bytes:
    """Set Chunk Size 64 KiB, then ``streams`` chunk streams each starting a message of
    ``announced`` bytes and sending ``sent`` of them: partial messages the server must
    buffer until they complete, which they never do."""
    setup = encode_message(2, MessageType.SET_CHUNK_SIZE, 0, 0, set_chunk_size(PARTIAL_CHUNK), 128)
    chunk = bytes(PARTIAL_CHUNK)
    parts = [setup]
    for csid in range(3, 3 + streams):
        parts.append(encode_header(0, csid, 0, announced, MessageType.VIDEO, 1) + chunk)
        parts += [encode_header(3, csid) + chunk] * (sent // PARTIAL_CHUNK - 1)
    return b"".join(parts)


def rtmp_partial_messages(streams: int, announced: int, sent: int) -> Opening:
    """The handshake, then :func:`partial_messages_wire`."""
    wire = partial_messages_wire(streams, announced, sent)

    async def opening(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await rtmp_handshake(reader, writer)
        writer.write(wire)
        await writer.drain()

    return opening


def trickled_connect() -> Iterator[bytes]:
    """A valid ``connect`` command, one byte at a time."""
    wire = encode_message(3, 20, 0, 0, commands.encode_command("connect", 1, {"app": "live"}), 128)
    for i in range(len(wire)):
        yield wire[i : i + 1]


def slowloris_request() -> Opening:
    async def opening(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")

    return opening


def slowloris_headers() -> Iterator[bytes]:
    n = 0
    while True:
        n += 1
        yield f"X-Slow-{n}: {n}\r\n".encode()


def silence() -> Iterator[bytes]:
    while True:
        yield b""


# ------------------------------------------------------------------ SRT (UDP)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue(8192)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.tally.answers += 1
        with contextlib.suppress(asyncio.QueueFull):
            self.inbox.put_nowait(data)


async def _udp(tally: Tally, port: int) -> tuple[asyncio.DatagramTransport, _Datagrams]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _Datagrams(tally), local_addr=(ATTACK_HOST, 0), remote_addr=("127.0.0.1", port)
    )
    return transport, protocol


def conclusion_flood(conclusion: bytes, count: int, first_id: int = 0x10000) -> list[bytes]:
    """One valid conclusion replayed under ``count`` caller socket IDs (handshake CIF
    offset 24): what a flooding tool does once it holds a cookie, each a new request."""
    at = 16 + 24
    return [
        conclusion[:at] + ((first_id + i) & 0xFFFFFFFF).to_bytes(4, "big") + conclusion[at + 4 :]
        for i in range(count)
    ]


async def _paced(
    transport: asyncio.DatagramTransport, tally: Tally, datagrams: list[bytes], rate: float
) -> None:
    """Send in bursts of 1/20 s so the rate holds without a sleep per datagram."""
    burst = max(1, int(rate / 20))
    for start in range(0, len(datagrams), burst):
        for datagram in datagrams[start : start + burst]:
            transport.sendto(datagram)
            tally.made += 1
            tally.sent_bytes += len(datagram)
        await asyncio.sleep(burst / rate)


async def srt_garbage(tally: Tally, port: int, rate: float, stop: asyncio.Event) -> None:
    """Random datagrams, half of them behind a plausible SRT header."""
    rng = random.Random(5)
    transport, _ = await _udp(tally, port)
    try:
        while not stop.is_set():
            batch = []
            for _ in range(int(rate)):
                body = rng.randbytes(rng.randrange(0, 1400))
                if rng.randrange(2):
                    kind = rng.choice((0, 0x80000000 | rng.randrange(0, 8) << 16))
                    body = kind.to_bytes(4, "big") + rng.randbytes(8) + bytes(4) + body
                batch.append(body)
            await _paced(transport, tally, batch, rate)
    finally:
        transport.close()


async def srt_conclusions(tally: Tally, port: int, rate: float, stop: asyncio.Event) -> None:
    """Bad-key conclusions under fresh socket IDs; a new cookie (induction) each second."""
    transport, protocol = await _udp(tally, port)
    next_id = 0x10000
    loop = asyncio.get_running_loop()
    try:
        while not stop.is_set():
            while not protocol.inbox.empty():  # the last batch's rejections
                protocol.inbox.get_nowait()
            caller = srt.SrtConnection.caller(loop.time(), streamid="#!::r=live/sk_nope,m=publish")
            for datagram in caller.datagrams_to_send():
                transport.sendto(datagram)
            try:
                while True:
                    caller.receive(await asyncio.wait_for(protocol.inbox.get(), 2.0), loop.time())
                    out = caller.datagrams_to_send()
                    if out:
                        conclusion = out[0]
                        break
            except TimeoutError:
                tally.failed += 1
                continue
            flood = conclusion_flood(conclusion, int(rate), next_id)
            next_id += len(flood)
            await _paced(transport, tally, flood, rate)
    finally:
        transport.close()
