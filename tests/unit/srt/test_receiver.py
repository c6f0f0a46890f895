"""Live receiver duties, fed hand-made packets with a fake clock: sequence and
timestamp wrap, NAK (immediate, periodic), ACK/ACKACK, TSBPD, too-late drop,
DROPREQ, key refresh, bounds."""

from __future__ import annotations

import pytest

from server.protocols.srt import (
    DataReceived,
    PacketsDropped,
    SrtConnection,
    SrtLimits,
)
from server.protocols.srt.control import (
    ackack_packet,
    dropreq_packet,
    km_packet,
    parse_ack,
    parse_loss_list,
)
from server.protocols.srt.crypto import ReceiveKeys, SendKeys, parse_key_material
from server.protocols.srt.packet import ControlPacket, ControlType, DataPacket, KeyIndex

from .helpers import seeded

# Against the compiled modules and their pure-Python twins (tests/accel_twins.py).
pytestmark = pytest.mark.usefixtures("implementation")

SOCK = 0x2000
PEER = 0x1000
TOP = 0x7FFFFFFF
PASS = b"correct horse battery"


def make(
    isn: int,
    *,
    tsbpd: bool = False,
    latency: int = 100,
    keys: ReceiveKeys | None = None,
    **limits: object,
) -> SrtConnection:
    conn = SrtConnection.accepted(
        0.0,
        socket_id=SOCK,
        peer_addr=("127.0.0.1", 9),
        peer_socket_id=PEER,
        isn=isn,
        streamid="",
        latency_ms=latency,
        peer_latency_ms=latency,
        receive_keys=keys,
        limits=SrtLimits(tsbpd_delivery=tsbpd, **limits),  # type: ignore[arg-type]
        handshake_response=b"hs",
    )
    conn.events()
    conn.datagrams_to_send()
    return conn


def data(
    seq: int,
    ts: int = 0,
    payload: bytes | None = None,
    *,
    key: KeyIndex = KeyIndex.CLEAR,
    rexmit: bool = False,
) -> bytes:
    body = payload if payload is not None else seq.to_bytes(4, "big")
    return DataPacket(
        seq & TOP, 1, ts & 0xFFFFFFFF, SOCK, body, key=key, retransmitted=rexmit
    ).encode()


def got(conn: SrtConnection) -> list[int]:
    return [e.seq for e in conn.events() if isinstance(e, DataReceived)]


def controls(conn: SrtConnection, ctype: int) -> list[ControlPacket]:
    pkts = [ControlPacket.decode(d) for d in conn.datagrams_to_send()]
    return [p for p in pkts if p.type == ctype]


def test_sequence_wrap_in_order() -> None:
    conn = make(TOP - 2)
    for i in range(6):
        conn.receive(data(TOP - 2 + i), 0.001 * i)
    assert got(conn) == [TOP - 2, TOP - 1, TOP, 0, 1, 2]


def test_gap_across_wrap_is_nakked_at_once_and_filled() -> None:
    conn = make(TOP - 2)
    conn.receive(data(TOP - 2), 0.0)
    conn.receive(data(2), 0.001)  # TOP-1, TOP, 0, 1 missing
    [nak] = controls(conn, ControlType.NAK)
    assert parse_loss_list(nak.cif) == [(TOP - 1, 1)]
    for seq in (0, TOP, 1, TOP - 1):  # retransmissions, out of order
        conn.receive(data(seq, rexmit=True), 0.01)
    assert got(conn) == [TOP - 2, TOP - 1, TOP, 0, 1, 2]
    stats = conn.stats()
    assert stats.packets_lost == 4 and stats.packets_retransmitted_received == 4


def test_periodic_nak_resends_loss_list() -> None:
    conn = make(100, latency=1000)
    conn.receive(data(100), 0.0)
    conn.receive(data(103), 0.001)
    conn.receive(data(105), 0.002)
    naks = controls(conn, ControlType.NAK)
    assert [parse_loss_list(n.cif) for n in naks] == [[(101, 102)], [(104, 104)]]
    # initial RTT 100 ms / var 50 ms -> period (100 + 4*50) / 2 = 150 ms from the first loss
    assert conn.next_timer() == pytest.approx(0.010)  # the ACK comes first
    conn.handle_timer(0.010)
    controls(conn, ControlType.ACK)
    conn.handle_timer(0.149)
    assert controls(conn, ControlType.NAK) == []
    conn.handle_timer(0.151)
    [nak] = controls(conn, ControlType.NAK)
    assert parse_loss_list(nak.cif) == [(101, 102), (104, 104)]


def test_full_ack_every_syn_and_ackack_rtt() -> None:
    conn = make(TOP)
    conn.receive(data(TOP), 0.0)
    conn.receive(data(0), 0.001)
    assert conn.next_timer() == pytest.approx(0.010)  # one SYN after the handshake
    conn.handle_timer(0.010)
    [ack] = controls(conn, ControlType.ACK)
    assert ack.type_info == 1
    body = parse_ack(ack.cif)
    assert body.kind == "full" and body.ack_seq == 1 and body.rtt == 100_000
    assert body.available_buffer == 8192
    conn.receive(ackack_packet(1, 0, SOCK), 0.040)  # 30 ms round trip
    assert conn.stats().rtt_ms == pytest.approx(30.0)
    conn.handle_timer(0.5)
    assert controls(conn, ControlType.ACK) == []  # nothing new, confirmed: quiet
    conn.receive(data(1), 0.6)
    conn.handle_timer(0.6)
    [ack] = controls(conn, ControlType.ACK)
    assert ack.type_info == 2 and parse_ack(ack.cif).ack_seq == 2
    # no ACKACK for #2: it is repeated after two RTTs
    conn.handle_timer(0.62)
    assert controls(conn, ControlType.ACK) == []
    conn.handle_timer(0.661)
    [again] = controls(conn, ControlType.ACK)
    assert again.type_info == 3 and parse_ack(again.cif).ack_seq == 2


def test_tsbpd_delivers_at_play_time_with_timestamp_wrap() -> None:
    conn = make(50, tsbpd=True, latency=100)
    base_ts = (1 << 32) - 2_000  # the sender's clock wraps 2 ms in
    for i in range(5):
        conn.receive(data(50 + i, base_ts + i * 1000), 1.0 + i * 0.001)
    assert got(conn) == []
    conn.handle_timer(1.004)  # the ACK
    assert conn.next_timer() == pytest.approx(1.1)
    conn.handle_timer(1.1)
    events = conn.events()
    assert [e.seq for e in events if isinstance(e, DataReceived)] == [50]
    conn.handle_timer(1.1025)
    events = [e for e in conn.events() if isinstance(e, DataReceived)]
    assert [e.seq for e in events] == [51, 52]
    assert events[1].timestamp == (1 << 32)  # unwrapped
    conn.handle_timer(1.2)
    assert got(conn) == [53, 54]


def test_too_late_drop_moves_ack_point() -> None:
    conn = make(10, tsbpd=True, latency=100)
    conn.receive(data(10, 0), 0.0)
    conn.receive(data(13, 3000), 0.003)  # 11, 12 lost for good
    conn.handle_timer(0.1)
    assert got(conn) == [10]
    assert conn.next_timer() == pytest.approx(0.103)  # play time of 13
    conn.handle_timer(0.103)
    events = conn.events()
    assert events[0] == PacketsDropped(11, 2, "too late")
    assert [e.seq for e in events[1:]] == [13]
    conn.handle_timer(0.2)
    acks = [parse_ack(p.cif).ack_seq for p in controls(conn, ControlType.ACK)]
    assert acks[-1] == 14  # the "fake ACK": the sender may forget 11 and 12
    conn.receive(data(11, 1000, rexmit=True), 0.21)  # belated
    assert got(conn) == [] and conn.stats().packets_discarded == 1
    assert conn.stats().packets_dropped == 2


def _sample_rtt(conn: SrtConnection, at: float) -> None:
    """A full ACK at ``at`` answered 1 ms later: RTT 1 ms, so the NAK period is its
    20 ms floor."""
    conn.handle_timer(at)
    [ack] = controls(conn, ControlType.ACK)
    conn.receive(ackack_packet(ack.type_info, 0, SOCK), at + 0.001)
    assert conn.stats().rtt_ms == pytest.approx(1.0)


def test_immediate_mode_holes_wait_only_until_successor_play_time() -> None:
    conn = make(10, tsbpd=False, latency=100)
    conn.receive(data(10, 0), 0.0)
    _sample_rtt(conn, 0.010)
    conn.receive(data(12, 20000), 0.020)
    conn.receive(data(13, 21000), 0.021)
    assert got(conn) == [10]
    conn.handle_timer(0.1199)
    assert got(conn) == []
    assert conn.next_timer() == pytest.approx(0.120)  # play time of 12
    conn.handle_timer(0.120)
    events = conn.events()
    assert events[0] == PacketsDropped(11, 1, "too late")
    assert [e.seq for e in events[1:]] == [12, 13]


def test_immediate_mode_hole_found_late_waits_for_its_retransmission() -> None:
    """Packets paced out late (a keyframe burst) reveal a loss when those behind it
    are already past their play time: the hole is held two NAK periods (2 x 20 ms
    here) from its detection, so the retransmission the NAK asked for is used."""
    conn = make(10, tsbpd=False, latency=100)
    conn.receive(data(10, 0), 0.0)
    _sample_rtt(conn, 0.010)
    conn.receive(data(12, 20000), 0.150)  # play time 0.120 passed already
    assert [parse_loss_list(n.cif) for n in controls(conn, ControlType.NAK)] == [[(11, 11)]]
    assert got(conn) == [10]
    conn.handle_timer(0.160)
    conn.receive(data(11, 10000, rexmit=True), 0.165)
    assert got(conn) == [11, 12]
    assert conn.stats().packets_dropped == 0


def test_immediate_mode_late_hole_is_given_up_after_two_nak_periods() -> None:
    conn = make(10, tsbpd=False, latency=100)
    conn.receive(data(10, 0), 0.0)
    _sample_rtt(conn, 0.010)
    conn.receive(data(12, 20000), 0.150)
    conn.receive(data(14, 22000), 0.170)  # a second hole, found 20 ms later
    conn.handle_timer(0.1899)
    assert got(conn) == [10]
    assert conn.next_timer() == pytest.approx(0.190)
    conn.handle_timer(0.190)
    events = conn.events()
    assert events[0] == PacketsDropped(11, 1, "too late")
    assert [e.seq for e in events[1:]] == [12]
    conn.handle_timer(0.2099)  # the second hole has its own hold, from 0.170
    assert conn.events() == []
    conn.handle_timer(0.210)
    events = conn.events()
    assert events[0] == PacketsDropped(13, 1, "too late")
    assert [e.seq for e in events[1:]] == [14]


def test_immediate_mode_keeps_no_record_of_holes_filled_long_ago() -> None:
    conn = make(0, tsbpd=False, latency=100)
    conn.receive(data(0, 0), 0.0)
    for k in range(1, 1000):  # a gap every other packet, each filled at once
        conn.receive(data(2 * k, 2000 * k), 0.002 * k)
        conn.receive(data(2 * k - 1, 2000 * k - 1000, rexmit=True), 0.002 * k)
    assert len(got(conn)) == 1999 and conn.stats().packets_dropped == 0
    rx = conn._rx
    assert rx is not None and rx._revealed is not None and len(rx._revealed) <= 1


def test_tsbpd_mode_gives_a_late_hole_up_at_once() -> None:
    """With play-time delivery the hole is not held: what is behind it plays late
    already (only immediate-delivery ingest holds holes)."""
    conn = make(10, tsbpd=True, latency=100)
    conn.receive(data(10, 0), 0.0)
    _sample_rtt(conn, 0.010)
    conn.handle_timer(0.100)
    assert got(conn) == [10]
    conn.receive(data(12, 20000), 0.150)
    events = conn.events()
    assert events[0] == PacketsDropped(11, 1, "too late")
    assert [e.seq for e in events[1:]] == [12]


def test_dropreq_skips_hole_now() -> None:
    conn = make(10, tsbpd=False)
    conn.receive(data(10), 0.0)
    conn.receive(data(14), 0.001)
    conn.datagrams_to_send()
    assert got(conn) == [10]
    conn.receive(dropreq_packet(0, 11, 13, 0, SOCK), 0.002)
    events = conn.events()
    assert events[0] == PacketsDropped(11, 3, "dropped by sender")
    assert [e.seq for e in events[1:]] == [14]
    conn.handle_timer(1.0)
    assert controls(conn, ControlType.NAK) == []  # nothing left to ask for


def test_dropreq_inside_a_later_range_only_stops_naks() -> None:
    conn = make(10, tsbpd=False, latency=1000)
    conn.receive(data(10), 0.0)
    conn.receive(data(20), 0.001)
    conn.receive(dropreq_packet(0, 15, 17, 0, SOCK), 0.002)
    conn.handle_timer(0.5)
    naks = [parse_loss_list(p.cif) for p in controls(conn, ControlType.NAK)]
    assert naks[-1] == [(11, 14), (18, 19)]


def test_far_future_packet_is_refused() -> None:
    conn = make(10, flow_window=64)
    conn.receive(data(10), 0.0)
    conn.receive(data(11 + 64), 0.001)  # 64 ahead of the next to deliver
    assert controls(conn, ControlType.NAK) == []
    assert conn.stats().packets_discarded == 1 and conn.stats().packets_lost == 0


def test_duplicates_are_discarded() -> None:
    conn = make(10, tsbpd=True)
    for _ in range(3):
        conn.receive(data(10), 0.0)
        conn.receive(data(11), 0.0)
    conn.handle_timer(1.0)
    assert got(conn) == [10, 11] and conn.stats().packets_discarded == 4


def test_encrypted_receive_and_key_refresh() -> None:
    send = SendKeys.create(PASS, 16, seeded(1), refresh_rate=4, preannounce=1)
    receive = ReceiveKeys(PASS)
    receive.install(parse_key_material(send.km))
    conn = make(0, keys=receive)
    for seq in range(12):
        kk = send.kk
        cipher = send.ciphers[kk]
        body = cipher.crypt(seq, b"\x47" * 188)
        km = send.on_packet()
        conn.receive(data(seq, payload=body, key=KeyIndex(kk)), seq * 0.001)
        if km is not None:
            conn.receive(km_packet(3, km, 0, SOCK), seq * 0.001)
            [rsp] = [p for p in controls(conn, ControlType.USER_DEFINED)]
            assert rsp.subtype == 4 and rsp.cif == km
    payloads = [e.payload for e in conn.events() if isinstance(e, DataReceived)]
    assert payloads == [b"\x47" * 188] * 12
    assert conn.stats().key_refreshes_received == 5 and send.refreshes == 3


def test_undecryptable_packets_are_counted_not_delivered() -> None:
    send = SendKeys.create(PASS, 16, seeded(2))
    receive = ReceiveKeys(PASS)
    receive.install(parse_key_material(send.km))
    conn = make(0, keys=receive)
    conn.receive(data(0, payload=b"x" * 10, key=KeyIndex.ODD), 0.0)  # no odd key
    conn.receive(data(1, payload=send.ciphers[1].crypt(1, b"ok"), key=KeyIndex.EVEN), 0.0)
    assert [e.payload for e in conn.events() if isinstance(e, DataReceived)] == [b"ok"]
    assert conn.stats().packets_undecryptable == 1
    assert controls(conn, ControlType.NAK) == []  # the slot is not chased by ARQ


def test_kmreq_with_wrong_passphrase_answers_badsecret_and_keeps_keys() -> None:
    receive = ReceiveKeys(PASS)
    receive.install(parse_key_material(SendKeys.create(PASS, 16, seeded(3)).km))
    conn = make(0, keys=receive)
    other = SendKeys.create(b"some other passphrase", 16, seeded(4))
    conn.receive(km_packet(3, other.km, 0, SOCK), 0.0)
    [rsp] = controls(conn, ControlType.USER_DEFINED)
    assert rsp.cif == (4).to_bytes(4, "big")
    assert conn.stats().key_refreshes_received == 0


def test_clear_connection_answers_kmreq_with_nosecret() -> None:
    conn = make(0)
    conn.receive(km_packet(3, SendKeys.create(PASS, 16, seeded(5)).km, 0, SOCK), 0.0)
    [rsp] = controls(conn, ControlType.USER_DEFINED)
    assert rsp.cif == (3).to_bytes(4, "big")


def test_malformed_control_packets_are_counted_not_fatal() -> None:
    conn = make(0)
    for bad in (
        ControlPacket(ControlType.NAK, 0, 0, 0, SOCK, b"\x80\x00\x00\x01").encode(),
        ControlPacket(ControlType.ACK, 0, 1, 0, SOCK, b"").encode(),
        ControlPacket(ControlType.DROPREQ, 0, 0, 0, SOCK, b"\x00").encode(),
        b"\x80",
    ):
        conn.receive(bad, 0.0)
    assert conn.stats().malformed == 4 and not conn.closed
    conn.receive(data(0), 0.0)
    assert got(conn) == [0]


def test_packets_for_another_socket_are_ignored() -> None:
    conn = make(0)
    other = DataPacket(0, 1, 0, SOCK + 1, b"x").encode()
    conn.receive(other, 0.0)
    assert got(conn) == [] and conn.stats().packets_received == 0
