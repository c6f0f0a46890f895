"""Live sender: packetisation, ACK/ACKACK, NAK retransmission with the R flag,
drop by age and DROPREQ, pacing, bounds."""

from __future__ import annotations

import pytest

from server.protocols.srt import SrtConnection, SrtLimits
from server.protocols.srt.control import Ack, ack_packet, nak_packet, parse_drop_request
from server.protocols.srt.packet import ControlPacket, ControlType, DataPacket, KeyIndex

# Against the compiled modules and their pure-Python twins (tests/accel_twins.py).
pytestmark = pytest.mark.usefixtures("implementation")

SOCK = 0x2000
PEER = 0x1000
TOP = 0x7FFFFFFF


def make(isn: int = 100, latency: int = 120, **limits: object) -> SrtConnection:
    conn = SrtConnection.accepted(
        0.0,
        socket_id=SOCK,
        peer_addr=("127.0.0.1", 9),
        peer_socket_id=PEER,
        isn=isn,
        streamid="",
        latency_ms=latency,
        peer_latency_ms=latency,
        receive_keys=None,
        limits=SrtLimits(**limits),  # type: ignore[arg-type]
        handshake_response=b"hs",
    )
    conn.events()
    conn.datagrams_to_send()
    return conn


def out(conn: SrtConnection) -> tuple[list[DataPacket], list[ControlPacket]]:
    data, ctrl = [], []
    for d in conn.datagrams_to_send():
        (ctrl.append(ControlPacket.decode(d)) if d[0] & 0x80 else data.append(DataPacket.decode(d)))
    return data, ctrl


def ack(conn: SrtConnection, number: int, seq: int, now: float, rtt: int = 20_000) -> None:
    body = Ack(seq, rtt, 1000, 8000, 100, 1000, 100_000) if number else Ack(seq)
    conn.receive(ack_packet(number, body, 0, SOCK), now)


def nak(conn: SrtConnection, ranges: list[tuple[int, int]], now: float) -> None:
    conn.receive(nak_packet(ranges, 0, SOCK, 1456), now)


def test_packetisation_across_wrap() -> None:
    conn = make(isn=TOP - 1)
    for i in range(4):
        conn.send(bytes([i]) * 1316, 0.5 + i * 0.001)
    data, _ = out(conn)
    assert [p.seq for p in data] == [TOP - 1, TOP, 0, 1]
    assert [p.msgno for p in data] == [1, 2, 3, 4]
    assert [p.timestamp for p in data] == [500_000, 501_000, 502_000, 503_000]
    assert all(p.dst == PEER and p.in_order and p.key is KeyIndex.CLEAR for p in data)
    assert all(not p.retransmitted and len(p.payload) == 1316 for p in data)
    assert conn.stats().packets_sent == 4 and conn.stats().send_buffer == 4


def test_full_ack_frees_and_is_ackacked_light_ack_is_not() -> None:
    conn = make(isn=TOP - 1)
    for _i in range(4):
        conn.send(b"x", 0.0)
    out(conn)
    ack(conn, 7, 0, 0.01)  # acknowledges TOP-1 and TOP
    _, ctrl = out(conn)
    assert [(c.type, c.type_info) for c in ctrl] == [(ControlType.ACKACK, 7)]
    assert conn.stats().send_buffer == 2 and conn.stats().rtt_ms == 20.0
    ack(conn, 0, 2, 0.02)  # light ACK: frees, no ACKACK
    assert out(conn) == ([], [])
    assert conn.stats().send_buffer == 0
    ack(conn, 8, 5, 0.03)  # beyond what was sent: ignored (but still ACKACKed)
    assert conn.stats().send_buffer == 0


def test_nak_retransmits_with_r_flag_once_per_rtt() -> None:
    conn = make(isn=TOP - 1)
    for i in range(5):
        conn.send(bytes([i]), 0.0)
    originals, _ = out(conn)
    ack(conn, 1, TOP - 1, 0.01, rtt=20_000)
    out(conn)
    nak(conn, [(TOP, 0), (2, 2)], 0.02)
    again, _ = out(conn)
    assert [p.seq for p in again] == [TOP, 0, 2]
    for p in again:
        assert p.retransmitted
        orig = next(o for o in originals if o.seq == p.seq)
        assert (p.timestamp, p.msgno, p.payload) == (orig.timestamp, orig.msgno, orig.payload)
    nak(conn, [(TOP, TOP)], 0.025)  # written before the copy could arrive: skipped
    assert out(conn) == ([], [])
    nak(conn, [(TOP, TOP)], 0.045)  # an RTT later: lost again, re-sent
    [p], _ = out(conn)
    assert p.seq == TOP and p.retransmitted
    assert conn.stats().packets_retransmitted == 4


def test_a_lost_tail_is_probed_after_a_quiet_rto_with_backoff() -> None:
    """No later packet shows the receiver a lost tail, so no NAK comes: the sender
    re-sends what is unacknowledged once it has been quiet for an RTO."""
    conn = make(isn=10)
    for i in range(3):
        conn.send(bytes([i]), 0.0)
    out(conn)
    ack(conn, 1, 11, 0.005, rtt=2_000)  # 10 arrived; 11 and 12 (the tail) were lost
    out(conn)
    # RTT + 4 var + two ACK periods = 26 ms; at least 30 ms
    assert conn.next_timer() == pytest.approx(0.005 + 0.030)
    conn.handle_timer(0.034)
    assert out(conn)[0] == []
    conn.handle_timer(0.035)
    again, _ = out(conn)
    assert [p.seq for p in again] == [11, 12] and all(p.retransmitted for p in again)
    assert conn.next_timer() == pytest.approx(0.035 + 0.060)  # backed off x2
    conn.handle_timer(0.095)
    assert [p.seq for p in out(conn)[0]] == [11, 12]
    ack(conn, 2, 13, 0.1, rtt=2_000)  # progress: the tail arrived, nothing to probe
    out(conn)
    assert conn.stats().send_buffer == 0 and conn.stats().packets_retransmitted == 4
    assert (conn.next_timer() or 0) >= 0.1 + 0.5  # the keep-alive, not a probe
    conn.handle_timer(0.2)
    assert out(conn)[0] == []


def test_a_steady_stream_never_probes() -> None:
    conn = make(isn=10)
    for i in range(100):  # 10 ms apart, each ACKed 5 ms later
        conn.send(b"x", i * 0.01)
        conn.handle_timer(i * 0.01 + 0.004)
        ack(conn, i + 1, 11 + i, i * 0.01 + 0.005, rtt=2_000)
    data, _ = out(conn)
    assert len(data) == 100 and not any(p.retransmitted for p in data)


def test_old_packets_dropped_and_dropreq_answers_nak() -> None:
    conn = make(isn=10, latency=120)
    for _i in range(3):
        conn.send(b"x", 0.0)
    conn.send(b"y", 1.0)
    out(conn)
    conn.send(b"z", 1.05)  # threshold max(120 ms, 1 s) + 20 ms: 10..12 go
    assert conn.stats().packets_send_dropped == 3
    out(conn)
    nak(conn, [(11, 13)], 1.06)
    data, ctrl = out(conn)
    assert [p.seq for p in data] == [13]
    [drop] = [c for c in ctrl if c.type == ControlType.DROPREQ]
    assert parse_drop_request(drop.cif) == (11, 12) and drop.type_info == 0


def test_send_buffer_is_bounded() -> None:
    conn = make(send_buffer=32)
    for _ in range(40):
        conn.send(b"x", 0.0)
    assert conn.stats().send_buffer == 32 and conn.stats().packets_send_dropped == 8


def test_payload_limit() -> None:
    conn = make()
    conn.send(bytes(1456), 0.0)
    with pytest.raises(ValueError):
        conn.send(bytes(1457), 0.0)


def test_pacing_spreads_a_burst() -> None:
    # 1 MB/s with 10 ms bursts: ~10 KB may leave at once, the rest follows the rate
    conn = make(max_bandwidth=1_000_000, pacing_burst=0.010)
    for _ in range(50):  # 50 x 1332 = 66.6 KB at once
        conn.send(bytes(1316), 1.0)
    first, _ = out(conn)
    assert 7 <= len(first) <= 9
    t = conn.next_timer()
    assert t is not None and 1.0 < t < 1.012  # when a whole 10 ms burst may go again
    now, sent = 1.0, len(first)
    wakeups = 0
    while sent < 50:
        now = conn.next_timer()
        conn.handle_timer(now)
        sent += len(out(conn)[0])
        wakeups += 1
    # the rest of the burst takes about 56 KB / 1 MB/s, and each wake-up sends a
    # whole burst (~7 packets), not one or two
    assert 1.05 <= now <= 1.07 and wakeups <= 9


def test_unpaced_when_rate_unknown() -> None:
    conn = make()
    for _ in range(50):
        conn.send(bytes(1316), 1.0)
    assert len(out(conn)[0]) == 50
