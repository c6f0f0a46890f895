"""µs of receiver CPU per datagram: the SRT listener's batched read (issue 21) against
the asyncio datagram endpoint it replaced, on a real socket.

    python -m bench.srt_udp_micro [--rates 400,4000,20000] [--seconds 3]

A sender process paces 1316-byte datagrams at each rate (the packet rate of 1, 10
and 50 paced 4 Mbit/s SRT publishers) in 1 ms bursts; the receiver, on uvloop, only
counts them. Reported: the receiver's CPU (``time.process_time``) per datagram
received, for ``endpoint`` (``create_datagram_endpoint``, one callback per
datagram) and ``batched`` (``add_reader`` + a ``recvfrom`` loop). Not a target: it
shows where the wake-up cost goes at each rate.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import time
from typing import Any

from server.ingest import srt_udp

PAYLOAD = 1316 + 16


def _send(port: int, rate: int, seconds: float) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    data = b"\x00" * PAYLOAD
    to = ("127.0.0.1", port)
    start = time.monotonic()
    sent = 0
    while True:
        elapsed = time.monotonic() - start
        if elapsed >= seconds:
            break
        due = int(elapsed * rate)
        while sent < due:
            sock.sendto(data, to)
            sent += 1
        time.sleep(0.001)
    sock.close()


class _Counter(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.count = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        pass

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.count += 1

    def datagrams_received(self, datagrams: srt_udp.Datagrams) -> None:
        self.count += len(datagrams)

    def error_received(self, exc: Exception) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        pass


async def _measure(kind: str, rate: int, seconds: float) -> float:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", 0))
    counter = _Counter()
    transport: asyncio.BaseTransport
    if kind == "endpoint":
        transport, _ = await loop.create_datagram_endpoint(lambda: counter, sock=sock)
    else:
        transport = srt_udp.BatchedUdpEndpoint(loop, sock, counter)
    port = sock.getsockname()[1]
    sender = multiprocessing.Process(target=_send, args=(port, rate, seconds))
    sender.start()
    await asyncio.sleep(0.2)
    c0, n0 = time.process_time(), counter.count
    await asyncio.sleep(seconds - 0.4)
    c1, n1 = time.process_time(), counter.count
    await loop.run_in_executor(None, sender.join)
    transport.close()
    return (c1 - c0) * 1e6 / max(1, n1 - n0)


async def main(rates: list[int], seconds: float) -> None:
    kinds = ["endpoint", "batched"]
    for rate in rates:
        figures = []
        for kind in kinds:
            figures.append(f"{kind} {await _measure(kind, rate, seconds):.2f}")
        print(f"{rate:>6} datagrams/s: µs of CPU per datagram: " + ", ".join(figures))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.srt_udp_micro")
    parser.add_argument("--rates", default="400,4000,20000")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    import uvloop

    uvloop.run(main([int(r) for r in args.rates.split(",")], args.seconds))
