"""The 16-byte SRT header, data packets and control packets (brief 1.1).

The hot paths (receiver, sender) read and write headers with the precompiled
:data:`HEADER` struct directly; :class:`DataPacket` / :class:`ControlPacket` are the
readable, fully validated forms used by handshakes, tests and fuzzers.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from .errors import ProtocolError
from .seqno import MSGNO_MASK, SEQ_MASK, TS_MASK

HEADER = struct.Struct(">IIII")
HEADER_SIZE = 16
U32 = struct.Struct(">I")

CONTROL_BIT = 0x80000000
#: Flag-word bits of a data packet: PP(2) O(1) KK(2) R(1) msgno(26).
PP_SHIFT = 30
ORDER_FLAG = 1 << 29
KK_SHIFT = 27
REXMIT_FLAG = 1 << 26
#: The retransmission bit as it sits in byte 4 of the datagram.
REXMIT_BYTE_BIT = 0x04
#: Live mode always sends single-packet messages: PP=11, O=1.
SOLO_IN_ORDER = 0xE0000000


class PacketPosition(IntEnum):
    """PP bits: where the packet sits in its message."""

    MIDDLE = 0
    LAST = 1
    FIRST = 2
    SOLO = 3


class KeyIndex(IntEnum):
    """KK bits: which stream key encrypted the payload."""

    CLEAR = 0
    EVEN = 1
    ODD = 2
    BOTH = 3  # only meaningful in key-material messages


class ControlType(IntEnum):
    HANDSHAKE = 0x0000
    KEEPALIVE = 0x0001
    ACK = 0x0002
    NAK = 0x0003
    CONGESTION_WARNING = 0x0004
    SHUTDOWN = 0x0005
    ACKACK = 0x0006
    DROPREQ = 0x0007
    PEERERROR = 0x0008
    USER_DEFINED = 0x7FFF


class ExtendedType(IntEnum):
    """Subtypes of the user-defined control type 0x7FFF ("SRT extended")."""

    HSREQ = 1
    HSRSP = 2
    KMREQ = 3
    KMRSP = 4


@dataclass(frozen=True, slots=True)
class DataPacket:
    """A data packet; ``seq`` is the 31-bit wire value, ``timestamp`` the 32-bit one."""

    seq: int
    msgno: int
    timestamp: int
    dst: int
    payload: bytes
    position: PacketPosition = PacketPosition.SOLO
    in_order: bool = True
    key: KeyIndex = KeyIndex.CLEAR
    retransmitted: bool = False

    def encode(self) -> bytes:
        """The datagram (values are masked to their field widths by the caller's contract)."""
        if not (0 <= self.seq <= SEQ_MASK and 0 <= self.msgno <= MSGNO_MASK):
            raise ValueError("seq or msgno out of range")
        flags = (
            (int(self.position) << PP_SHIFT)
            | (ORDER_FLAG if self.in_order else 0)
            | (int(self.key) << KK_SHIFT)
            | (REXMIT_FLAG if self.retransmitted else 0)
            | self.msgno
        )
        return HEADER.pack(self.seq, flags, self.timestamp & TS_MASK, self.dst) + self.payload

    @classmethod
    def decode(cls, datagram: bytes) -> DataPacket:
        if len(datagram) < HEADER_SIZE:
            raise ProtocolError(f"datagram of {len(datagram)} bytes is shorter than a header")
        seq, flags, ts, dst = HEADER.unpack_from(datagram)
        if seq & CONTROL_BIT:
            raise ProtocolError("not a data packet")
        return cls(
            seq=seq,
            msgno=flags & MSGNO_MASK,
            timestamp=ts,
            dst=dst,
            payload=bytes(datagram[HEADER_SIZE:]),
            position=PacketPosition(flags >> PP_SHIFT),
            in_order=bool(flags & ORDER_FLAG),
            key=KeyIndex((flags >> KK_SHIFT) & 3),
            retransmitted=bool(flags & REXMIT_FLAG),
        )


@dataclass(frozen=True, slots=True)
class ControlPacket:
    """A control packet: ``type_info`` is the type-specific word (ACK number, ...),
    ``cif`` the control information field exactly as on the wire."""

    type: int
    subtype: int
    type_info: int
    timestamp: int
    dst: int
    cif: bytes = b""

    def encode(self) -> bytes:
        return encode_control(
            self.type, self.subtype, self.type_info, self.timestamp, self.dst, self.cif
        )

    @classmethod
    def decode(cls, datagram: bytes) -> ControlPacket:
        if len(datagram) < HEADER_SIZE:
            raise ProtocolError(f"datagram of {len(datagram)} bytes is shorter than a header")
        word0, info, ts, dst = HEADER.unpack_from(datagram)
        if not word0 & CONTROL_BIT:
            raise ProtocolError("not a control packet")
        return cls(
            type=(word0 >> 16) & 0x7FFF,
            subtype=word0 & 0xFFFF,
            type_info=info,
            timestamp=ts,
            dst=dst,
            cif=bytes(datagram[HEADER_SIZE:]),
        )


def encode_control(
    ctype: int, subtype: int, type_info: int, timestamp: int, dst: int, cif: bytes = b""
) -> bytes:
    """One control datagram. ``timestamp`` is masked to 32 bits."""
    word0 = CONTROL_BIT | (ctype << 16) | subtype
    return HEADER.pack(word0, type_info & 0xFFFFFFFF, timestamp & TS_MASK, dst) + cif


def destination_socket_id(datagram: bytes) -> int | None:
    """The destination socket ID of a datagram (None if it is too short to have one);
    what a UDP adapter demultiplexes on (0 = handshake for the listener)."""
    if len(datagram) < HEADER_SIZE:
        return None
    value: int = U32.unpack_from(datagram, 12)[0]
    return value


def set_rexmit_flag(datagram: bytes) -> bytes:
    """A copy of a data datagram with R=1 (a retransmission keeps everything else,
    including its timestamp and, for encrypted payloads, its ciphertext)."""
    return datagram[:4] + bytes((datagram[4] | REXMIT_BYTE_BIT,)) + datagram[5:]
