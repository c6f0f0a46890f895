"""Caller -> listener transfers over a deterministic lossy, reordering and
duplicating in-memory link, driven by a fake clock."""

from __future__ import annotations

import random
import struct

import pytest

from server.protocols.srt import (
    ConnectionClosed,
    ConnectionEstablished,
    ConnectionFailed,
    DataReceived,
    PacketsDropped,
    SrtConnection,
    SrtLimits,
    SrtListener,
)

from .helpers import Link, Sim, accept_with, data_seq, seeded

# Against the compiled modules and their pure-Python twins (tests/accel_twins.py).
pytestmark = pytest.mark.usefixtures("implementation")

ISN_NEAR_WRAP = 0x7FFFFFFF - 700  # wraps after 700 packets
TS_NEAR_WRAP = (1 << 32) - 1_500_000  # caller timestamps wrap 1.5 s in
PASS = "correct horse battery"


def payload(i: int) -> bytes:
    """188-byte TS-looking packets x7 with the index inside, so order is checkable."""
    return (b"\x47" + struct.pack(">I", i) + bytes(183)) * 7


def index_of(p: bytes) -> int:
    return struct.unpack_from(">I", p, 1)[0]


def start(
    *,
    limits: SrtLimits,
    passphrase: str | None = None,
    up: Link | None = None,
    down: Link | None = None,
    isn: int = ISN_NEAR_WRAP,
    pbkeylen: int = 16,
) -> Sim:
    caller = SrtConnection.caller(
        0.0,
        streamid="#!::r=live/k,m=publish",
        passphrase=passphrase,
        pbkeylen=pbkeylen,
        limits=limits,
        isn=isn,
        timestamp_origin_us=TS_NEAR_WRAP,
        random_bytes=seeded(7),
    )
    listener = SrtListener(limits, 0.0, random_bytes=seeded(8))
    sim = Sim(caller, listener, decide=accept_with(passphrase), up=up, down=down)
    sim.run_until(lambda: bool(sim.caller_of(ConnectionEstablished)), 2.0)
    return sim


def stream(sim: Sim, count: int, interval: float = 0.001) -> dict[int, float]:
    """Send ``count`` payloads, one every ``interval``; returns send times by index."""
    sent: dict[int, float] = {}

    def source(now: float) -> None:
        i = len(sent)
        sim.caller.send(payload(i), now)
        sent[i] = now
        sim.source_next = now + interval if len(sent) < count else None

    sim.source = source
    sim.source_next = sim.now
    sim.run(sim.now + count * interval + 2.0)
    return sent


def delivered(sim: Sim) -> list[tuple[float, DataReceived]]:
    return [(t, e) for t, e in sim.server_events if isinstance(e, DataReceived)]


@pytest.mark.parametrize("tsbpd", [True, False])
def test_lossy_link_recovers_everything_across_wraps(tsbpd: bool) -> None:
    limits = SrtLimits(latency_ms=200, tsbpd_delivery=tsbpd)
    rng = random.Random(42)
    up = Link(rng, delay=0.010, jitter=0.004, loss=0.05, duplicate=0.02)
    down = Link(random.Random(43), delay=0.010, jitter=0.002, loss=0.05, duplicate=0.02)
    sim = start(limits=limits, up=up, down=down)
    sent = stream(sim, 2500)
    got = delivered(sim)
    assert [index_of(e.payload) for _t, e in got] == list(range(2500))
    seqs = [e.seq for _t, e in got]
    assert seqs[0] == ISN_NEAR_WRAP and seqs[-1] == (ISN_NEAR_WRAP + 2499) & 0x7FFFFFFF
    # timestamps are unwrapped past 2**32 and keep increasing
    stamps = [e.timestamp for _t, e in got]
    assert stamps == sorted(stamps) and stamps[-1] > 1 << 32
    stats = sim.server.stats()
    assert stats.packets_lost > 50 and stats.packets_retransmitted_received > 50
    assert stats.packets_dropped == 0 and stats.packets_delivered == 2500
    assert stats.packets_discarded > 0  # link duplicates
    caller_stats = sim.caller.stats()
    assert caller_stats.packets_retransmitted > 50 and caller_stats.packets_send_dropped == 0
    if tsbpd:  # nothing plays before its send time + latency
        for t, e in got:
            assert t >= sent[index_of(e.payload)] + 0.200 - 1e-6
    assert not sim.server_of(PacketsDropped)


def test_unrecoverable_packets_are_dropped_too_late_and_counted() -> None:
    limits = SrtLimits(latency_ms=120)
    doomed = {(ISN_NEAR_WRAP + k) & 0x7FFFFFFF for k in (100, 101, 102, 690, 701, 1500)}
    rng = random.Random(5)
    up = Link(rng, delay=0.005, jitter=0.003, loss=0.03, drop=lambda d: data_seq(d) in doomed)
    down = Link(random.Random(6), delay=0.005, loss=0.03)
    sim = start(limits=limits, up=up, down=down)
    stream(sim, 2000)
    got = [index_of(e.payload) for _t, e in delivered(sim)]
    lost_indexes = {(s - ISN_NEAR_WRAP) & 0x7FFFFFFF for s in doomed}
    assert got == [i for i in range(2000) if i not in lost_indexes]
    stats = sim.server.stats()
    assert stats.packets_dropped == len(doomed)
    drops = sim.server_of(PacketsDropped)
    assert sum(d.count for d in drops) == len(doomed)
    assert {d.reason for d in drops} == {"too late"}
    # the retransmissions that did not make it are the only gaps
    assert stats.packets_delivered == 2000 - len(doomed)


def test_encrypted_transfer_with_key_refresh() -> None:
    limits = SrtLimits(km_refresh_rate=400, km_preannounce=40, tsbpd_delivery=False)
    up = Link(random.Random(9), delay=0.004, jitter=0.002, loss=0.02)
    down = Link(random.Random(10), delay=0.004, loss=0.02)
    sim = start(limits=limits, passphrase=PASS, up=up, down=down, pbkeylen=32)
    stream(sim, 1300)
    got = delivered(sim)
    assert [e.payload for _t, e in got] == [payload(i) for i in range(1300)]
    stats = sim.server.stats()
    assert stats.encrypted and stats.key_length == 32
    assert stats.packets_undecryptable == 0
    # 3 switches: each announced (KK=3) and decommissioned (single key)
    assert stats.key_refreshes_received >= 6
    keys = sim.caller._tx.keys  # white-box: the sender really switched keys
    assert keys is not None and keys.refreshes == 3


def test_rtt_measured_by_ackack() -> None:
    limits = SrtLimits()
    sim = start(
        limits=limits,
        up=Link(random.Random(1), delay=0.015),
        down=Link(random.Random(2), delay=0.015),
    )
    stream(sim, 300)
    assert 29.0 <= sim.server.stats().rtt_ms <= 32.0
    assert 29.0 <= sim.caller.stats().rtt_ms <= 32.0  # adopted from the ACKs


def test_keepalive_and_peer_idle_timeout() -> None:
    sim = start(limits=SrtLimits())
    up_before, down_before = sim.up.carried, sim.down.carried
    sim.run(sim.now + 3.05)
    # both sides keep the connection alive with one keepalive per second
    assert sim.up.carried - up_before == 3 and sim.down.carried - down_before == 3
    assert not sim.caller.closed and not sim.server.closed
    sim.up.up = False  # the caller's packets stop arriving
    cut = sim.now
    sim.run(cut + 6.0)
    failed = sim.server_of(ConnectionFailed)
    assert failed and failed[0].reason == "peer idle timeout"
    when = next(t for t, e in sim.server_events if isinstance(e, ConnectionFailed))
    assert 4.9 <= when - cut <= 5.1
    assert sim.server.closed
    # the caller heard the listener's keepalives until it failed; 5 s later it fails too
    sim.run(cut + 11.0)
    assert sim.caller_of(ConnectionFailed) == [ConnectionFailed("peer idle timeout")]


def test_shutdown_closes_peer() -> None:
    sim = start(limits=SrtLimits())
    stream(sim, 10)
    sim.caller.close()
    assert sim.caller.closed
    sim.run(sim.now + 0.1)
    assert sim.server_of(ConnectionClosed) == [ConnectionClosed("peer sent SHUTDOWN")]
    assert sim.server.closed
    assert sim.server.next_timer() is None
    assert sim.server.socket_id not in sim.listener.connections


def test_light_ack_after_64_packets_in_one_interval() -> None:
    sim = start(limits=SrtLimits())
    acks: list[bytes] = []
    push = sim.down.push

    def spy(d: bytes, now: float) -> None:
        if d[0] == 0x80 and d[1] == 0x02:
            acks.append(d)
        push(d, now)

    sim.down.push = spy  # type: ignore[method-assign]
    for i in range(130):  # a burst within one millisecond
        sim.caller.send(payload(i), sim.now)
    sim.run(sim.now + 0.2)
    light = [a for a in acks if len(a) == 20 and a[4:8] == bytes(4)]
    assert len(light) == 2
    assert len(delivered(sim)) == 130


def test_periodic_nak_repeats_until_recovered() -> None:
    """A packet whose first two retransmissions are lost arrives on the third try."""
    target = (ISN_NEAR_WRAP + 50) & 0x7FFFFFFF
    copies = {"n": 0}

    def drop(d: bytes) -> bool:
        if data_seq(d) == target:
            copies["n"] += 1
            return copies["n"] <= 3
        return False

    up = Link(random.Random(1), delay=0.005, drop=drop)
    sim = start(limits=SrtLimits(latency_ms=500), up=up)
    stream(sim, 200)
    assert [index_of(e.payload) for _t, e in delivered(sim)] == list(range(200))
    assert copies["n"] == 4
    assert sim.server.stats().packets_dropped == 0


def test_listener_can_send_back_with_the_callers_keys() -> None:
    """HSv5 uses the caller's key material both ways (not needed for ingest, but the
    connection is symmetric)."""
    sim = start(limits=SrtLimits(tsbpd_delivery=False), passphrase=PASS)
    for i in range(20):
        sim.server.send(payload(i), sim.now)
    sim.run(sim.now + 0.2)
    got = [e for _t, e in sim.caller_events if isinstance(e, DataReceived)]
    assert [e.payload for e in got] == [payload(i) for i in range(20)]
    assert sim.caller.stats().packets_undecryptable == 0
