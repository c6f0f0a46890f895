"""Micro-benchmark of the whole SRT ingest path in one process, without sockets.

The real ``SrtIngestServer`` (listener, connections, the listener's tick, TS demux,
``IngestManager`` claim, bus publish) gets a fake transport; N sans-IO callers send
the benchmark sample as MPEG-TS. Their data datagrams are built beforehand and fed
round robin through ``datagram_received`` as fast as the loop allows; the server's
ACKs go back to the callers and their ACKACKs to the server, and the loop runs (ticks,
flushes) after every round. What is left out is the kernel and the event loop's
socket I/O, so this isolates the Python cost per data packet -- including the
per-connection timer work at the SYN rate, which is real time here: a faster path
sees fewer ticks per packet, exactly as a server with headroom does. Use it to try
optimisations quickly, then confirm with ``python -m bench --scenario srt-a``.

    python -m bench.srt_ingest_micro [--streams 50] [--seconds 2] [--rounds 3] [--batched]

``--batched`` hands each round's datagrams (one per stream) to ``datagrams_received``
at once, as the listener's batched socket read does, instead of one
``datagram_received`` call each.

Prints one JSON line: ``us_per_packet`` (best round, process CPU time per data
packet, the callers' ACK handling included -- about 0.5 us of it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench.media import SampleSpec, ensure_sample, read_flv, sample_frames
from bench.plane import MemoryDirectory
from bench.srt_loadgen import TsLoop
from server.bus import Registry
from server.ingest.manager import IngestManager
from server.ingest.srt import SrtIngestServer
from server.protocols import srt
from server.settings import IngestSettings, SrtSettings

CACHE = Path(__file__).resolve().parent / ".cache"
PACKETS_PER_SECOND = 400  # a 4 Mbit/s stream in 1316-byte payloads


class FakeTransport:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any]] = []

    def sendto(self, data: bytes, addr: Any) -> None:
        self.sent.append((data, addr))

    def close(self) -> None:
        return None


def ts_payloads(seconds: float) -> list[bytes]:
    loop = TsLoop(sample_frames(read_flv(ensure_sample(CACHE, SampleSpec()))))
    data = b""
    index = 0
    need = int(seconds * PACKETS_PER_SECOND) * srt.LIVE_PAYLOAD
    while len(data) < need:
        data += b"".join(g.wire for g in loop.groups(index))
        index += 1
    return [data[i : i + srt.LIVE_PAYLOAD] for i in range(0, need, srt.LIVE_PAYLOAD)]


async def connect(
    server: SrtIngestServer, transport: FakeTransport, streams: int
) -> dict[Any, srt.SrtConnection]:
    loop = asyncio.get_running_loop()
    callers: dict[Any, srt.SrtConnection] = {}
    limits = srt.SrtLimits(max_bandwidth=1 << 30)  # no pacing: datagrams built at once
    for i in range(streams):
        addr = ("127.0.0.1", 40000 + i)
        caller = srt.SrtConnection.caller(
            loop.time(), streamid=f"#!::r=live/k{i},m=publish", limits=limits
        )
        callers[addr] = caller
        for _ in range(40):
            for datagram in caller.datagrams_to_send():
                server.datagram_received(datagram, addr)
            await asyncio.sleep(0)
            route(transport, callers)
            if caller.established and server.connections:
                break
    if len(server.connections) != streams:
        raise RuntimeError(f"only {len(server.connections)} of {streams} connected")
    return callers


def route(transport: FakeTransport, callers: dict[Any, srt.SrtConnection]) -> None:
    sent, transport.sent = transport.sent, []
    now = time.monotonic()
    for datagram, addr in sent:
        callers[addr].receive(datagram, now)


async def one_round(streams: int, payloads: list[bytes], batched: bool = False) -> float:
    loop = asyncio.get_running_loop()
    manager = IngestManager(MemoryDirectory(), Registry(), IngestSettings())
    server = SrtIngestServer(manager, SrtSettings(port=0, max_connections=streams + 1))
    transport = FakeTransport()
    server.prepare(loop)
    server.connection_made(transport)  # type: ignore[arg-type]
    callers = await connect(server, transport, streams)
    now = loop.time()
    rows: list[list[tuple[bytes, Any]]] = []
    for payload in payloads:
        row = []
        for addr, caller in callers.items():
            caller.send(payload, now)
            row += [(d, addr) for d in caller.datagrams_to_send()]
        rows.append(row)
    receive = server.datagram_received
    start = time.process_time()
    for row in rows:
        if batched:  # one wake-up's datagrams at once, as server.ingest.srt_udp hands them
            server.datagrams_received(row)
        else:
            for datagram, addr in row:
                receive(datagram, addr)
        await asyncio.sleep(0)
        route(transport, callers)
        for addr, caller in callers.items():
            for datagram in caller.datagrams_to_send():
                receive(datagram, addr)
    elapsed = time.process_time() - start
    delivered = sum(c.demux.stats.packets for c in server.connections.values())
    await server.close()
    await manager.shutdown()
    if delivered < len(rows) * streams * 7 * 0.9:
        raise RuntimeError(f"only {delivered} TS packets demuxed")
    return elapsed / (len(rows) * streams) * 1e6


async def main_async(
    streams: int, seconds: float, rounds: int, batched: bool = False
) -> dict[str, Any]:
    payloads = ts_payloads(seconds)
    best = min([await one_round(streams, payloads, batched) for _ in range(rounds)])
    return {
        "bench": "srt_ingest_micro",
        "streams": streams,
        "batched": batched,
        "packets_per_stream": len(payloads),
        "rounds": rounds,
        "us_per_packet": round(best, 2),
        "python": sys.version.split()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.srt_ingest_micro")
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--batched", action="store_true", help="one datagrams_received call per round"
    )
    args = parser.parse_args()
    coro = main_async(args.streams, args.seconds, args.rounds, args.batched)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(coro)
    else:
        result = uvloop.run(coro)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
