"""Control information fields (CIF) of the control packets other than the
handshake (brief 1.1, 1.3): ACK in its three sizes, NAK loss lists, drop requests,
and the small fixed bodies. Builders return whole datagrams; parsers take the CIF
(``datagram[16:]``) and raise only :class:`ProtocolError`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import ProtocolError
from .packet import ControlType, encode_control
from .seqno import SEQ_MASK

ACK_FULL = struct.Struct(">7I")
ACK_SMALL = struct.Struct(">4I")
U32 = struct.Struct(">I")
TWO_U32 = struct.Struct(">II")
#: CIF of packets that carry none; libsrt pads them to 20 bytes with one zero word.
EMPTY_CIF = b"\x00\x00\x00\x00"
LOSS_RANGE_BIT = 0x80000000


@dataclass(frozen=True, slots=True)
class Ack:
    """An ACK body. ``ack_seq`` is the first sequence number *not* received (wire
    value). A light ACK carries only that; a small ACK adds RTT, RTT variance and
    available buffer; a full ACK adds the three rate fields."""

    ack_seq: int
    rtt: int | None = None
    rtt_var: int | None = None
    available_buffer: int | None = None
    packet_rate: int | None = None
    link_capacity: int | None = None
    byte_rate: int | None = None

    @property
    def kind(self) -> str:
        if self.rtt is None:
            return "light"
        return "small" if self.packet_rate is None else "full"

    def encode_cif(self) -> bytes:
        if self.rtt is None:
            return U32.pack(self.ack_seq)
        fields = (self.rtt, self.rtt_var or 0, self.available_buffer or 0)
        if self.packet_rate is None:
            return ACK_SMALL.pack(self.ack_seq, *fields)
        return ACK_FULL.pack(
            self.ack_seq, *fields, self.packet_rate, self.link_capacity or 0, self.byte_rate or 0
        )


def parse_ack(cif: bytes) -> Ack:
    """Parse a 4-, 16- or 28-byte ACK CIF (longer ones: extra words are ignored)."""
    n = len(cif)
    if n >= 28:
        seq, rtt, var, buf, rate, cap, brate = ACK_FULL.unpack_from(cif)
        return Ack(seq & SEQ_MASK, rtt, var, buf, rate, cap, brate)
    if n >= 16:
        seq, rtt, var, buf = ACK_SMALL.unpack_from(cif)
        return Ack(seq & SEQ_MASK, rtt, var, buf)
    if n >= 4:
        return Ack(U32.unpack_from(cif)[0] & SEQ_MASK)
    raise ProtocolError(f"ACK with a {n}-byte body")


_ACK_HEAD = struct.Struct(">3I")


def parse_ack_rtt(cif: bytes) -> tuple[int, int, int] | tuple[int, None, None]:
    """``(ack_seq, rtt, rtt_var)`` of a 4-, 16- or 28-byte ACK CIF (None, None for a
    light ACK): what a sender needs from every ACK, without an :class:`Ack`."""
    if len(cif) >= 16:
        seq, rtt, var = _ACK_HEAD.unpack_from(cif)
        return seq & SEQ_MASK, rtt, var
    if len(cif) >= 4:
        return U32.unpack_from(cif)[0] & SEQ_MASK, None, None
    raise ProtocolError(f"ACK with a {len(cif)}-byte body")


def encode_loss_list(ranges: Iterable[tuple[int, int]], max_bytes: int = 1456) -> bytes:
    """Loss list: a single number is one word (bit 31 clear); a range is two words,
    the first with bit 31 set. Stops before exceeding ``max_bytes``; the rest is
    reported by the next periodic NAK."""
    words: list[int] = []
    limit = max_bytes // 4
    for first, last in ranges:
        first &= SEQ_MASK
        last &= SEQ_MASK
        if first == last:
            if len(words) + 1 > limit:
                break
            words.append(first)
        else:
            if len(words) + 2 > limit:
                break
            words.append(first | LOSS_RANGE_BIT)
            words.append(last)
    return struct.pack(f">{len(words)}I", *words)


def parse_loss_list(cif: bytes) -> list[tuple[int, int]]:
    """Loss list back into inclusive ``(first, last)`` wire-number ranges."""
    n = len(cif) // 4
    if n == 0:
        raise ProtocolError("NAK without a loss list")
    words = struct.unpack_from(f">{n}I", cif)
    out: list[tuple[int, int]] = []
    i = 0
    while i < n:
        word = words[i]
        if word & LOSS_RANGE_BIT:
            if i + 1 >= n:
                raise ProtocolError("NAK range start without an end")
            last = words[i + 1]
            if last & LOSS_RANGE_BIT:
                raise ProtocolError("NAK range end has the range bit set")
            out.append((word & SEQ_MASK, last))
            i += 2
        else:
            out.append((word, word))
            i += 1
    return out


def parse_drop_request(cif: bytes) -> tuple[int, int]:
    """DROPREQ body: first and last sequence number the sender gave up."""
    if len(cif) < 8:
        raise ProtocolError(f"DROPREQ with a {len(cif)}-byte body")
    first, last = TWO_U32.unpack_from(cif)
    return first & SEQ_MASK, last & SEQ_MASK


# ---------------------------------------------------------------- whole datagrams


def ack_packet(ack_number: int, ack: Ack, timestamp: int, dst: int) -> bytes:
    """ACK datagram; ``ack_number`` is 0 for light and small ACKs."""
    return encode_control(ControlType.ACK, 0, ack_number, timestamp, dst, ack.encode_cif())


_FULL_ACK_PACKET = struct.Struct(">IIII7I")
_LIGHT_ACK_PACKET = struct.Struct(">IIIII")
_ACK_WORD0 = 0x80000000 | (ControlType.ACK << 16)


def full_ack_packet(
    ack_number: int,
    ack_seq: int,
    rtt: int,
    rtt_var: int,
    available_buffer: int,
    packet_rate: int,
    link_capacity: int,
    byte_rate: int,
    timestamp: int,
    dst: int,
) -> bytes:
    """The receiver's full ACK in one ``struct`` call: what ``ack_packet`` builds from
    an :class:`Ack`, without the object (100 of them a second per connection)."""
    return _FULL_ACK_PACKET.pack(
        _ACK_WORD0,
        ack_number & 0xFFFFFFFF,
        timestamp & 0xFFFFFFFF,
        dst,
        ack_seq & SEQ_MASK,
        rtt,
        rtt_var,
        available_buffer,
        packet_rate,
        link_capacity,
        byte_rate,
    )


def light_ack_packet(ack_seq: int, timestamp: int, dst: int) -> bytes:
    """A light ACK (ACK number 0, only the ack sequence)."""
    return _LIGHT_ACK_PACKET.pack(_ACK_WORD0, 0, timestamp & 0xFFFFFFFF, dst, ack_seq & SEQ_MASK)


def ackack_packet(ack_number: int, timestamp: int, dst: int) -> bytes:
    return encode_control(ControlType.ACKACK, 0, ack_number, timestamp, dst, EMPTY_CIF)


def nak_packet(
    ranges: Iterable[tuple[int, int]], timestamp: int, dst: int, max_bytes: int
) -> bytes:
    cif = encode_loss_list(ranges, max_bytes)
    return encode_control(ControlType.NAK, 0, 0, timestamp, dst, cif)


def dropreq_packet(msgno: int, first: int, last: int, timestamp: int, dst: int) -> bytes:
    cif = TWO_U32.pack(first & SEQ_MASK, last & SEQ_MASK)
    return encode_control(ControlType.DROPREQ, 0, msgno, timestamp, dst, cif)


def keepalive_packet(timestamp: int, dst: int) -> bytes:
    return encode_control(ControlType.KEEPALIVE, 0, 0, timestamp, dst, EMPTY_CIF)


def shutdown_packet(timestamp: int, dst: int) -> bytes:
    return encode_control(ControlType.SHUTDOWN, 0, 0, timestamp, dst, EMPTY_CIF)


def congestion_warning_packet(timestamp: int, dst: int) -> bytes:
    return encode_control(ControlType.CONGESTION_WARNING, 0, 0, timestamp, dst, EMPTY_CIF)


def peer_error_packet(code: int, timestamp: int, dst: int) -> bytes:
    return encode_control(ControlType.PEERERROR, 0, code, timestamp, dst, EMPTY_CIF)


def km_packet(subtype: int, km: bytes, timestamp: int, dst: int) -> bytes:
    """0x7FFF control packet carrying a key-material message (subtype 3 KMREQ) or its
    answer (subtype 4 KMRSP: the echo, or one word with a KM state on failure)."""
    return encode_control(ControlType.USER_DEFINED, subtype, 0, timestamp, dst, km)
