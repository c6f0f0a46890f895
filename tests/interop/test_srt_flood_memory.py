"""A flood of SRT conclusions replaying one bad key must not leave the server bigger.

Each conclusion that passes the listener's checks asks the stream directory about
its key. When every one of them held its own database lookup, 256 of them (the
pending-handshake bound) were in flight at a time, each with a session, a statement
and result objects: about 15 MiB of short-lived allocations that left the heap
fragmented, so RSS stayed up after the flood (``bench --scenario hostile``).
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from bench.hostile_attacks import conclusion_flood
from server.protocols import srt
from tests.interop.conftest import StartRelaycast

pytestmark = pytest.mark.interop

FLOOD = 30_000
RATE = 2000  # conclusions a second, as in the hostile scenario
BURST = 100
RSS_SLACK_MIB = 6.0
"""Growth allowed after the flood: 12.9 MiB when every conclusion had its own lookup,
3.5 to 3.8 MiB with shared lookups (measured on the 2-core bench machine)."""


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _drain(sock: socket.socket) -> int:
    answers = 0
    while True:
        try:
            sock.recv(2048)
        except BlockingIOError:
            return answers
        answers += 1


@pytest.mark.serial
@pytest.mark.solo
def test_a_bad_key_conclusion_flood_leaves_rss_where_it_was(
    start_relaycast: StartRelaycast,
) -> None:
    relaycast = start_relaycast()
    pid = relaycast.server.proc.pid
    url = relaycast.server.srt_url
    assert url, relaycast.log()
    port = int(url.rsplit(":", 1)[1])
    time.sleep(2)  # the server settles after start-up
    before = _rss_mib(pid)
    caller = srt.SrtConnection.caller(time.monotonic(), streamid="#!::r=live/sk_nope,m=publish")
    answers = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("127.0.0.1", port))
        sock.settimeout(5)
        [induction] = caller.datagrams_to_send()
        sock.send(induction)
        caller.receive(sock.recv(2048), time.monotonic())
        [conclusion] = caller.datagrams_to_send()
        sock.setblocking(False)
        flood = conclusion_flood(conclusion, FLOOD)
        for start in range(0, FLOOD, BURST):
            for datagram in flood[start : start + BURST]:
                sock.send(datagram)
            time.sleep(BURST / RATE)
            answers += _drain(sock)
        time.sleep(3)  # pending handshakes expire (5 s at most), refusals are written
        answers += _drain(sock)
    after = _rss_mib(pid)
    assert answers > FLOOD * 0.9, f"only {answers} of {FLOOD} conclusions answered"
    assert after - before < RSS_SLACK_MIB, (before, after)
