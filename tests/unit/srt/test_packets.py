"""Byte vectors: every packet type parses into the expected fields and encodes back
to the identical bytes (captured values from brief 1.1-1.3 and 2.1 where known)."""

from __future__ import annotations

import pytest

from server.protocols.srt import ProtocolError, destination_socket_id
from server.protocols.srt.control import (
    Ack,
    ack_packet,
    ackack_packet,
    congestion_warning_packet,
    dropreq_packet,
    encode_loss_list,
    keepalive_packet,
    km_packet,
    nak_packet,
    parse_ack,
    parse_drop_request,
    parse_loss_list,
    peer_error_packet,
    shutdown_packet,
)
from server.protocols.srt.crypto import KeyMaterial, parse_key_material
from server.protocols.srt.handshake import (
    ExtType,
    Handshake,
    HandshakeType,
    decode_peer_ip,
    decode_string_ext,
    describe_rejection,
    encode_peer_ip,
    encode_string_ext,
    is_rejection,
    parse_handshake_cif,
    parse_handshake_packet,
    parse_srt_hs_ext,
    rejection_packet,
)
from server.protocols.srt.packet import (
    ControlPacket,
    ControlType,
    DataPacket,
    KeyIndex,
    PacketPosition,
    set_rexmit_flag,
)
from server.protocols.srt.seqno import next_msgno, seq_add, seq_diff, seq_lt, unwrap_seq, unwrap_ts

DST = bytes.fromhex("10b0e9b9")
TS = bytes.fromhex("00003d58")


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def roundtrip_control(datagram: bytes) -> ControlPacket:
    pkt = ControlPacket.decode(datagram)
    assert pkt.encode() == datagram
    return pkt


def test_captured_data_header() -> None:
    datagram = h("7b86daf6 e8000001 00003d58 10b0e9b9") + b"\x57\x28"
    pkt = DataPacket.decode(datagram)
    assert pkt.seq == 2072435446 and pkt.msgno == 1 and pkt.timestamp == 15704
    assert pkt.dst == 0x10B0E9B9 and pkt.payload == b"\x57\x28"
    assert pkt.position is PacketPosition.SOLO and pkt.in_order
    assert pkt.key is KeyIndex.EVEN and not pkt.retransmitted
    assert pkt.encode() == datagram
    assert destination_socket_id(datagram) == 0x10B0E9B9
    again = set_rexmit_flag(datagram)
    assert again[4] == 0xEC and DataPacket.decode(again).retransmitted
    assert DataPacket.decode(again).msgno == 1


@pytest.mark.parametrize(
    ("position", "in_order", "key", "rexmit", "flags"),
    [
        (PacketPosition.FIRST, False, KeyIndex.CLEAR, False, "80000005"),
        (PacketPosition.MIDDLE, True, KeyIndex.ODD, True, "34000005"),
        (PacketPosition.LAST, False, KeyIndex.EVEN, False, "48000005"),
    ],
)
def test_data_flag_word(position, in_order, key, rexmit, flags) -> None:
    pkt = DataPacket(7, 5, 1, 2, b"", position, in_order, key, rexmit)
    assert pkt.encode()[4:8] == h(flags)
    assert DataPacket.decode(pkt.encode()) == pkt


def test_handshake_induction_vector() -> None:
    cif = h(
        "00000004 0000 0002 7b86daf6 000005dc 00002000 00000001 0cf4b833 00000000"
        "0100007f 00000000 00000000 00000000"
    )
    hs = parse_handshake_cif(cif)
    assert (hs.version, hs.encryption, hs.extension) == (4, 0, 2)
    assert (hs.isn, hs.mtu, hs.window) == (2072435446, 1500, 8192)
    assert hs.hs_type == HandshakeType.INDUCTION and hs.socket_id == 0x0CF4B833
    assert decode_peer_ip(hs.peer_ip) == "127.0.0.1"
    assert hs.encode_cif() == cif
    datagram = hs.encode(0x1234, 0)
    assert datagram[:16] == h("80000000 00000000 00001234 00000000")
    assert parse_handshake_packet(datagram) == (0x1234, 0, hs)
    assert len(datagram) == 64  # as captured


def test_handshake_with_extensions_roundtrip() -> None:
    hsreq = h("00010501 000000bf 00c800c8")
    sid = h("3a3a2123 696c3d72 742f6576 2c747365 75703d6d 73696c62 00000068")
    km = h(
        "12202901000000000200020000000404 f110c4e090b5349ed686c3c68434117f"
        "d8433ad365106b36e8f61d01307dc5e4021b28b14bb9269f"
    )
    hs = Handshake(
        5,
        2,
        7,
        2072435446,
        1500,
        8192,
        HandshakeType.CONCLUSION,
        0x0CF4B833,
        0x1F0258E4,
        encode_peer_ip("127.0.0.1"),
        ((ExtType.HSREQ, hsreq), (ExtType.SID, sid), (ExtType.KMREQ, km)),
    )
    cif = hs.encode_cif()
    assert len(cif) + 16 == 172  # the captured conclusion request length
    assert cif[48:52] == h("0001 0003") and cif[64:68] == h("0005 0007")
    assert parse_handshake_cif(cif) == hs
    ext = parse_srt_hs_ext(hsreq)
    assert (ext.version, ext.flags, ext.recv_latency_ms, ext.send_latency_ms) == (
        0x010501,
        0xBF,
        200,
        200,
    )
    assert ext.encode() == hsreq
    assert decode_string_ext(sid) == "#!::r=live/test,m=publish"
    assert encode_string_ext("#!::r=live/test,m=publish") == sid
    parsed = parse_key_material(km)
    assert parsed.kk == 1 and parsed.key_length == 16 and parsed.cipher == 2
    assert parsed.encode() == km


def test_hs_type_as_signed() -> None:
    assert not is_rejection(HandshakeType.CONCLUSION)
    assert not is_rejection(HandshakeType.DONE) and not is_rejection(1)
    assert is_rejection(1010) and is_rejection(2403)
    assert describe_rejection(2403) == "FORBIDDEN (2403)"
    assert describe_rejection(2999) == "application rejection 2999"


def test_rejection_packet_layout() -> None:
    req = Handshake(5, 0, 5, 9, 1500, 8192, HandshakeType.CONCLUSION, 0xABC, 0x55)
    datagram = rejection_packet(2403, req, 7)
    assert len(datagram) == 64
    _ts, dst, hs = parse_handshake_packet(datagram)
    assert dst == 0xABC and hs.hs_type == 2403 and hs.extensions == ()


def test_keepalive_shutdown_ackack_congestion_peererror() -> None:
    assert keepalive_packet(0x3D58, 0x10B0E9B9) == h("80010000 00000000") + TS + DST + bytes(4)
    assert shutdown_packet(0x3D58, 0x10B0E9B9) == h("80050000 00000000") + TS + DST + bytes(4)
    assert ackack_packet(1, 0x3D58, 0x10B0E9B9) == h("80060000 00000001") + TS + DST + bytes(4)
    assert congestion_warning_packet(0x3D58, 0x10B0E9B9) == h(
        "80040000 00000000"
    ) + TS + DST + bytes(4)
    assert peer_error_packet(4000, 0x3D58, 0x10B0E9B9) == h("80080000 00000fa0") + TS + DST + bytes(
        4
    )
    for datagram in (keepalive_packet(1, 2), shutdown_packet(1, 2), ackack_packet(9, 1, 2)):
        roundtrip_control(datagram)
    assert ControlPacket.decode(ackack_packet(9, 1, 2)).type_info == 9
    # a bare 16-byte control packet (no padding) is accepted too
    assert ControlPacket.decode(h("80010000 00000000") + TS + DST).type == ControlType.KEEPALIVE


def test_full_ack_captured_values() -> None:
    ack = Ack(2072435447, 100000, 50000, 8190, 1, 1000, 1500)
    datagram = ack_packet(1, ack, 0x3D58, 0x10B0E9B9)
    assert datagram == h(
        "80020000 00000001 00003d58 10b0e9b9 7b86daf7 000186a0 0000c350 00001ffe"
        "00000001 000003e8 000005dc"
    )
    pkt = roundtrip_control(datagram)
    assert pkt.type == ControlType.ACK and pkt.type_info == 1
    assert parse_ack(pkt.cif) == ack and ack.kind == "full"


def test_light_and_small_ack() -> None:
    light = ack_packet(0, Ack(5), 1, 2)
    assert light[16:] == h("00000005") and len(light) == 20
    assert parse_ack(light[16:]) == Ack(5) and Ack(5).kind == "light"
    small = Ack(5, 20000, 1000, 8000)
    assert small.kind == "small"
    datagram = ack_packet(0, small, 1, 2)
    assert datagram[16:] == h("00000005 00004e20 000003e8 00001f40")
    assert parse_ack(roundtrip_control(datagram).cif) == small
    with pytest.raises(ProtocolError):
        parse_ack(b"\x00\x00")


def test_nak_single_and_range() -> None:
    datagram = nak_packet([(7, 7), (10, 12), (0x7FFFFFFE, 0x7FFFFFFE)], 1, 2, 1456)
    assert datagram[:8] == h("80030000 00000000")
    assert datagram[16:] == h("00000007 8000000a 0000000c 7ffffffe")
    pkt = roundtrip_control(datagram)
    assert parse_loss_list(pkt.cif) == [(7, 7), (10, 12), (0x7FFFFFFE, 0x7FFFFFFE)]
    # a range across the wrap point
    assert parse_loss_list(encode_loss_list([(0x7FFFFFFF, 1)])) == [(0x7FFFFFFF, 1)]
    # capped to what fits one packet
    assert len(encode_loss_list([(i * 3, i * 3 + 1) for i in range(1000)], 1456)) == 1456
    for bad in (h("80000001"), h("80000001 80000002"), b""):
        with pytest.raises(ProtocolError):
            parse_loss_list(bad)


def test_dropreq() -> None:
    datagram = dropreq_packet(3, 100, 104, 1, 2)
    assert datagram == h("80070000 00000003 00000001 00000002 00000064 00000068")
    pkt = roundtrip_control(datagram)
    assert parse_drop_request(pkt.cif) == (100, 104)
    with pytest.raises(ProtocolError):
        parse_drop_request(bytes(4))


def test_user_defined_km_refresh() -> None:
    km = KeyMaterial(3, bytes(range(16)), 16, bytes(40))
    datagram = km_packet(3, km.encode(), 1, 2)
    assert datagram[:8] == h("ffff0003 00000000")
    pkt = roundtrip_control(datagram)
    assert (pkt.type, pkt.subtype) == (0x7FFF, 3)
    assert pkt.cif[:4] == h("12202903")
    assert parse_key_material(pkt.cif) == km
    answer = km_packet(4, (4).to_bytes(4, "big"), 1, 2)
    assert ControlPacket.decode(answer).subtype == 4 and answer[16:] == h("00000004")


def test_peer_ip_encoding() -> None:
    assert encode_peer_ip("127.0.0.1") == h("0100007f") + bytes(12)
    assert decode_peer_ip(encode_peer_ip("2001:db8::1")) == "2001:db8::1"
    assert encode_peer_ip("not an ip") == bytes(16)


def test_wrong_kind_and_short_packets() -> None:
    with pytest.raises(ProtocolError):
        DataPacket.decode(keepalive_packet(1, 2))
    with pytest.raises(ProtocolError):
        ControlPacket.decode(bytes(16))
    with pytest.raises(ProtocolError):
        DataPacket.decode(bytes(15))
    with pytest.raises(ProtocolError):
        parse_handshake_cif(bytes(47))
    with pytest.raises(ProtocolError):  # extension longer than the packet
        parse_handshake_cif(bytes(48) + h("0005 0009") + bytes(8))
    assert destination_socket_id(b"short") is None


def test_sequence_arithmetic() -> None:
    top = 0x7FFFFFFF
    assert seq_add(top, 1) == 0 and seq_add(0, -1) == top
    assert seq_diff(0, top) == 1 and seq_diff(top, 0) == -1
    assert seq_lt(top, 0) and not seq_lt(0, top)
    assert unwrap_seq(2, top) == top + 3  # extended past the wrap
    assert unwrap_seq(top, top + 3) == top
    assert unwrap_ts(5, (1 << 32) - 10) == (1 << 32) + 5
    assert unwrap_ts((1 << 32) - 10, (1 << 32) + 5) == (1 << 32) - 10
    assert next_msgno((1 << 26) - 1) == 1 and next_msgno(1) == 2
