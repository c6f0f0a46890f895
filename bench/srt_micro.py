"""Micro-benchmark: per-data-packet CPU cost of the sans-IO SRT core (no sockets).

* ``rx_plain_us`` / ``rx_aes128_us``: a listener-side connection receiving in-order
  1316-byte packets through ``SrtListener.receive`` (demultiplexing included), with
  what an adapter does around it: ``next_timer()`` after every datagram, the timer
  when due (ACKs every 10 ms), events and output drained every 16 packets.
  ``*_tsbpd`` variants release packets at their play time instead of at once.
* ``tx_plain_us`` / ``tx_aes128_us``: ``SrtConnection.send`` of a 1316-byte payload
  (packetisation, send buffer, pacing) plus draining the output.

Figures are microseconds of process CPU time per packet (``time.process_time``), so
a busy shared machine slows the run less than wall time would. Prints one JSON
line. Usage: python bench/srt_micro.py [packets_per_case]
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable

from server.protocols.srt import (
    ConnectionRequest,
    SrtConnection,
    SrtLimits,
    SrtListener,
)

ADDR = ("127.0.0.1", 40000)
PASS = "benchmark-passphrase"
PAYLOAD = b"\x47" + os.urandom(1315)
STEP = 0.001  # one packet per millisecond of simulated time (~10 Mbit/s)


def connect(
    passphrase: str | None, tsbpd: bool
) -> tuple[SrtConnection, SrtListener, SrtConnection]:
    limits = SrtLimits(tsbpd_delivery=tsbpd, max_bandwidth=0)
    caller = SrtConnection.caller(0.0, streamid="bench", passphrase=passphrase, limits=limits)
    listener = SrtListener(limits, 0.0)
    server: SrtConnection | None = None
    for _ in range(6):
        for d in caller.datagrams_to_send():
            routed = listener.receive(d, ADDR, 0.0)
            assert routed is None or routed is server
        for ev in listener.events():
            if isinstance(ev, ConnectionRequest):
                server = listener.accept(ev, 0.0, passphrase=passphrase)
        for d, _addr in listener.datagrams_to_send():
            caller.receive(d, 0.0)
        if server is not None:
            for d in server.datagrams_to_send():
                caller.receive(d, 0.0)
    assert server is not None and caller.established
    caller.events()
    server.events()
    return caller, listener, server


def sender_datagrams(caller: SrtConnection, count: int) -> list[bytes]:
    out: list[bytes] = []
    for i in range(count):
        caller.send(PAYLOAD, 0.001 + i * STEP)
        out.extend(d for d in caller.datagrams_to_send() if not d[0] & 0x80)
    return out


def bench_rx(passphrase: str | None, tsbpd: bool, count: int) -> float:
    caller, listener, server = connect(passphrase, tsbpd)
    packets = sender_datagrams(caller, count)
    now = 0.002
    delivered = 0
    timer: float | None = server.next_timer()
    start = time.process_time()
    for i, datagram in enumerate(packets):
        now += STEP
        if timer is not None and timer <= now:
            server.handle_timer(now)
        listener.receive(datagram, ADDR, now)
        timer = server.next_timer()
        if i & 15 == 15:
            delivered += len(server.events())
            server.datagrams_to_send()
    server.handle_timer(now + 1.0)
    delivered += len(server.events())
    elapsed = time.process_time() - start
    assert delivered == count, (delivered, count)
    return elapsed / count * 1e6


def bench_tx(passphrase: str | None, count: int) -> float:
    caller, _listener, _server = connect(passphrase, False)
    now = 0.002
    start = time.process_time()
    for i in range(count):
        now += STEP
        caller.send(PAYLOAD, now)
        if i & 15 == 15:
            caller.datagrams_to_send()
    elapsed = time.process_time() - start
    return elapsed / count * 1e6


def best(fn: Callable[[], float], rounds: int) -> float:
    """Fastest of a few rounds: the least disturbed by other processes."""
    return round(min(fn() for _ in range(rounds)), 2)


def empty_call_us(count: int = 200_000) -> float:
    """Cost of calling an empty function, measured alongside: a yardstick for how
    busy the machine was (about 0.03 µs on an idle core)."""

    def nothing() -> None:
        return None

    start = time.process_time()
    for _ in range(count):
        nothing()
    return (time.process_time() - start) / count * 1e6


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    result = {
        "bench": "srt_micro",
        "packets": count,
        "rounds": rounds,
        "payload_bytes": len(PAYLOAD),
        "rx_plain_us": best(lambda: bench_rx(None, False, count), rounds),
        "rx_aes128_us": best(lambda: bench_rx(PASS, False, count), rounds),
        "rx_plain_tsbpd_us": best(lambda: bench_rx(None, True, count), rounds),
        "rx_aes128_tsbpd_us": best(lambda: bench_rx(PASS, True, count), rounds),
        "tx_plain_us": best(lambda: bench_tx(None, count), rounds),
        "tx_aes128_us": best(lambda: bench_tx(PASS, count), rounds),
        "empty_call_us": best(empty_call_us, rounds),
        "python": sys.version.split()[0],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
