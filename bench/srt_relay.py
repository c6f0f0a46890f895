"""A lossy UDP relay for SRT scenario B, as its own process (its CPU is not the
server's): callers -> relay -> server, answers back the same way.

For every target port it binds one relay port on 127.0.0.1; each caller address gets
its own upstream socket connected to the target, so the server sees one peer per
caller, as without the relay. Caller-to-server **data** packets are dropped at random
with probability ``--loss`` (first transmissions and retransmissions alike, like a
lossy path); control packets and everything server-to-caller pass.

The relay is also the referee of recovery, the same for every server under test: a
dropped sequence number counts as recovered when a later copy of it (the sender's
retransmission, requested by the server's NAK) passes, and as recovered *in time*
when that happens within ``--latency`` ms of the first drop -- after that a live
receiver has already given the packet up.

Driven over stdin/stdout with JSON lines, like the load generators::

    -> {"event": "ready", "ports": {"<target>": <relay port>, ...}}
    <- mark   -> {"event": "mark", "forwarded": ..., "dropped": ..., "recovered": ..., ...}
    <- stop   -> {"event": "done", ...}; the relay exits
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SETTLED_S = 1.0
"""A drop this old without a passing copy will not be recovered any more."""
BUFFER = 4 << 20
"""Receive buffer of every relay socket (the kernel caps it at net.core.rmem_max).
With the default (~200 KB, ~8 ms of 50 publishers) a short stall of this process
lost originals before the referee saw them; the server then asked for them and
their retransmissions were judged instead -- at 50 publishers a quarter of the
packets went that way, and more so with a server whose output comes in bursts."""


def _udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER)
    return sock


@dataclass
class Referee:
    loss: float
    latency_s: float
    rng: random.Random
    forwarded: int = 0
    dropped: int = 0  # datagrams dropped
    recovered: int = 0  # distinct (caller, seq) dropped and later passed
    recovered_in_time: int = 0
    delays_ms: list[float] = field(default_factory=list)
    missing: dict[tuple[Any, int], float] = field(default_factory=dict)  # -> first drop time

    def passes(self, addr: Any, datagram: bytes, now: float) -> bool:
        """Decide one caller-to-server datagram; data packets may be dropped."""
        if len(datagram) < 16 or datagram[0] & 0x80:
            self.forwarded += 1
            return True
        seq = int.from_bytes(datagram[:4], "big")
        key = (addr, seq)
        if self.rng.random() < self.loss:
            self.dropped += 1
            self.missing.setdefault(key, now)
            return False
        first = self.missing.pop(key, None)
        if first is not None:
            delay = now - first
            self.recovered += 1
            self.recovered_in_time += delay <= self.latency_s
            self.delays_ms.append(delay * 1000)
        self.forwarded += 1
        return True

    def snapshot(self, now: float) -> dict[str, object]:
        lost = sum(1 for t in self.missing.values() if now - t >= SETTLED_S)
        settled = self.recovered + lost
        delays = sorted(self.delays_ms)
        return {
            "t": time.monotonic(),
            "forwarded": self.forwarded,
            "dropped": self.dropped,
            "recovered": self.recovered,
            "recovered_in_time": self.recovered_in_time,
            "unrecovered": lost,
            "pending": len(self.missing) - lost,
            "recovered_ratio": round(self.recovered_in_time / settled, 5) if settled else None,
            "recovery_ms_median": round(delays[len(delays) // 2], 2) if delays else None,
            "recovery_ms_max": round(delays[-1], 2) if delays else None,
        }


class RelayPort(asyncio.DatagramProtocol):
    """One relay port in front of one target port."""

    def __init__(self, target: tuple[str, int], referee: Referee) -> None:
        self.target = target
        self.referee = referee
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.DatagramTransport | None = None
        self.upstream: dict[Any, socket.socket] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not self.referee.passes(addr, data, self.loop.time()):
            return
        sock = self.upstream.get(addr)
        if sock is None:
            sock = self.upstream[addr] = self._open(addr)
        with contextlib.suppress(OSError):  # a full buffer is one more loss
            sock.send(data)

    def _open(self, addr: Any) -> socket.socket:
        sock = _udp_socket()
        sock.setblocking(False)
        sock.connect(self.target)
        self.loop.add_reader(sock.fileno(), self._answer(sock, addr))
        return sock

    def _answer(self, sock: socket.socket, addr: Any) -> Callable[[], None]:
        def read() -> None:
            transport = self.transport
            for _ in range(64):
                try:
                    data = sock.recv(65536)
                except OSError:
                    return
                if transport is not None:
                    transport.sendto(data, addr)

        return read

    def close(self) -> None:
        for sock in self.upstream.values():
            self.loop.remove_reader(sock.fileno())
            sock.close()
        if self.transport is not None:
            self.transport.close()


def _emit(event: str, **fields: object) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


async def run(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    referee = Referee(args.loss, args.latency / 1000, random.Random(args.seed))
    relays: list[RelayPort] = []
    ports: dict[str, int] = {}
    for target in args.targets:
        relay = RelayPort(("127.0.0.1", target), referee)
        sock = _udp_socket()
        sock.bind(("127.0.0.1", 0))
        transport, _ = await loop.create_datagram_endpoint(
            lambda relay=relay: relay,  # type: ignore[misc]
            sock=sock,
        )
        relays.append(relay)
        ports[str(target)] = int(transport.get_extra_info("sockname")[1])
    _emit("ready", ports=ports)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        command = (await reader.readline()).decode().strip() or "stop"
        if command == "mark":
            _emit("mark", **referee.snapshot(loop.time()))
        elif command == "stop":
            break
    _emit("done", **referee.snapshot(loop.time()))
    for relay in relays:
        relay.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", type=int, nargs="+", help="server UDP ports on 127.0.0.1")
    parser.add_argument("--loss", type=float, default=0.02, help="drop probability (0..1)")
    parser.add_argument("--latency", type=float, default=120.0, help="receiver latency, ms")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        import uvloop
    except ImportError:
        asyncio.run(run(args))
    else:
        uvloop.run(run(args))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
