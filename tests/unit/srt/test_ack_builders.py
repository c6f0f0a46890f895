"""The one-call ACK builders and the sender's ACK reader agree with the readable
``Ack`` form."""

from __future__ import annotations

import pytest

from server.protocols.srt import ProtocolError
from server.protocols.srt.control import (
    Ack,
    ack_packet,
    full_ack_packet,
    light_ack_packet,
    parse_ack,
    parse_ack_rtt,
)
from server.protocols.srt.packet import ControlPacket, ControlType


def test_full_ack_is_byte_identical_to_the_ack_form() -> None:
    fields = (0x7FFFFFFF, 12_345, 678, 8190, 400, 1000, 526_400)
    expected = ack_packet(0xFFFFFFFF, Ack(*fields), 0x1_0000_0005, 0x2A)
    built = full_ack_packet(0xFFFFFFFF, 0x7FFFFFFF, *fields[1:], 0x1_0000_0005, 0x2A)
    assert built == expected
    packet = ControlPacket.decode(built)
    assert packet.type == ControlType.ACK and packet.type_info == 0xFFFFFFFF
    assert packet.timestamp == 5 and parse_ack(packet.cif) == Ack(*fields)


def test_ack_sequence_is_masked_to_31_bits() -> None:
    # the receiver passes its unwrapped (extended) sequence number
    built = full_ack_packet(1, (1 << 31) + 7, 1, 2, 3, 4, 5, 6, 0, 9)
    assert parse_ack(ControlPacket.decode(built).cif).ack_seq == 7


def test_light_ack_is_byte_identical_to_the_ack_form() -> None:
    assert light_ack_packet((1 << 31) + 99, 77, 0x2A) == ack_packet(0, Ack(99), 77, 0x2A)


def test_a_sender_reads_every_ack_size_as_parse_ack_does() -> None:
    for ack in (Ack(5), Ack(6, 100, 50, 8190), Ack(7, 100, 50, 8190, 400, 1000, 9)):
        cif = ack.encode_cif()
        assert parse_ack_rtt(cif) == (ack.ack_seq, ack.rtt, ack.rtt_var)
        assert parse_ack_rtt(cif + b"\x00" * 4)[0] == ack.ack_seq  # padding ignored
    assert parse_ack_rtt(b"\xff\xff\xff\xff") == (0x7FFFFFFF, None, None)
    with pytest.raises(ProtocolError):
        parse_ack_rtt(b"\x00\x00")
