"""Message types and protocol control messages (protocols.md 5.3).

Builders return *payloads* (the chunk layer frames them); parsers take a payload and
raise :class:`ProtocolError` when it is too short. Also here: splitting aggregate
messages (type 22) and unwrapping 32-bit message timestamps.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from .chunk import encode_message
from .errors import ProtocolError

CONTROL_CSID: Final = 2
"""Protocol control messages travel on chunk stream 2, message stream 0, timestamp 0."""


class MessageType(IntEnum):
    """RTMP message type IDs."""

    SET_CHUNK_SIZE = 1
    ABORT = 2
    ACKNOWLEDGEMENT = 3
    USER_CONTROL = 4
    WINDOW_ACK_SIZE = 5
    SET_PEER_BANDWIDTH = 6
    AUDIO = 8
    VIDEO = 9
    DATA_AMF3 = 15
    SHARED_OBJECT_AMF3 = 16
    COMMAND_AMF3 = 17
    DATA_AMF0 = 18
    SHARED_OBJECT_AMF0 = 19
    COMMAND_AMF0 = 20
    AGGREGATE = 22


class UserControlEvent(IntEnum):
    """Event types carried by User Control messages (type 4)."""

    STREAM_BEGIN = 0
    STREAM_EOF = 1
    STREAM_DRY = 2
    SET_BUFFER_LENGTH = 3
    STREAM_IS_RECORDED = 4
    PING_REQUEST = 6
    PING_RESPONSE = 7


class PeerBandwidthLimit(IntEnum):
    """Limit type of Set Peer Bandwidth (type 6)."""

    HARD = 0
    SOFT = 1
    DYNAMIC = 2


_U32: Final = struct.Struct(">I")
_U16: Final = struct.Struct(">H")
_PEER_BW: Final = struct.Struct(">IB")
_AGG_HEADER: Final = struct.Struct(">BHBHBBHB")  # type, size(3), ts(3), ts_ext, stream id(3)
_MASK32: Final = 0xFFFFFFFF


# --------------------------------------------------------------------------- builders


def set_chunk_size(size: int) -> bytes:
    """Payload of Set Chunk Size; the top bit must stay zero."""
    if not 1 <= size <= 0x7FFFFFFF:
        raise ValueError("chunk size must be between 1 and 2**31-1")
    return _U32.pack(size)


def abort(csid: int) -> bytes:
    """Payload of Abort: the chunk stream whose partial message the peer should drop."""
    return _U32.pack(csid)


def acknowledgement(total_received: int) -> bytes:
    """Payload of Acknowledgement: bytes received so far, mod 2**32."""
    return _U32.pack(total_received & _MASK32)


def window_ack_size(size: int) -> bytes:
    """Payload of Window Acknowledgement Size."""
    return _U32.pack(size)


def set_peer_bandwidth(size: int, limit: PeerBandwidthLimit) -> bytes:
    """Payload of Set Peer Bandwidth."""
    return _PEER_BW.pack(size, int(limit))


def user_control(event: UserControlEvent, *values: int) -> bytes:
    """Payload of a User Control message: u16 event, then u32 values."""
    return _U16.pack(int(event)) + b"".join(_U32.pack(v & _MASK32) for v in values)


def control_message(type_id: MessageType, payload: bytes, chunk_size: int) -> bytes:
    """Wire bytes of a protocol control message (csid 2, msid 0, timestamp 0)."""
    return encode_message(CONTROL_CSID, int(type_id), 0, 0, payload, chunk_size)


# --------------------------------------------------------------------------- parsers


def parse_u32(payload: bytes, what: str) -> int:
    """Parse the single u32 of types 1, 2, 3 and 5."""
    if len(payload) < 4:
        raise ProtocolError(f"{what} message shorter than 4 bytes")
    return int(_U32.unpack_from(payload)[0])


def parse_set_peer_bandwidth(payload: bytes) -> tuple[int, int]:
    """Return (window, limit type)."""
    if len(payload) < 5:
        raise ProtocolError("Set Peer Bandwidth message shorter than 5 bytes")
    size, limit = _PEER_BW.unpack_from(payload)
    return int(size), int(limit)


_ARGUMENTS_NEEDED = {
    int(e): 2 if e == UserControlEvent.SET_BUFFER_LENGTH else 1 for e in UserControlEvent
}


@dataclass(frozen=True, slots=True)
class UserControl:
    """A parsed User Control message: the event and its u32 arguments."""

    event: int
    values: tuple[int, ...]


def parse_user_control(payload: bytes) -> UserControl:
    """Parse a User Control message; the events we act on must carry their u32."""
    if len(payload) < 2:
        raise ProtocolError("User Control message shorter than 2 bytes")
    event = int(_U16.unpack_from(payload)[0])
    count = (len(payload) - 2) // 4
    values = tuple(int(v) for v in struct.unpack_from(f">{count}I", payload, 2))
    if count < _ARGUMENTS_NEEDED.get(event, 0):
        raise ProtocolError(f"User Control event {event} without its argument")
    return UserControl(event, values)


# --------------------------------------------------------------------------- aggregate


@dataclass(frozen=True, slots=True)
class AggregatePart:
    """One sub-message of an aggregate message, with its absolute raw timestamp."""

    type_id: int
    timestamp: int
    payload: bytes


def split_aggregate(payload: bytes, timestamp: int) -> list[AggregatePart]:
    """Split an aggregate (type 22) body into sub-messages.

    Each part is an FLV-like tag: 11-byte header, body, 4-byte back-pointer. Sub-message
    timestamps are relative to the first one and rebased on the aggregate's own
    timestamp (as nginx-rtmp and SRS do). Back-pointers are skipped, not verified,
    because writers get them wrong and nothing depends on them.
    """
    parts: list[AggregatePart] = []
    pos = 0
    end = len(payload)
    first: int | None = None
    while end - pos >= _AGG_HEADER.size:
        type_id, size_hi, size_lo, ts_hi, ts_lo, ts_ext, _, _ = _AGG_HEADER.unpack_from(
            payload, pos
        )
        size = (size_hi << 8) | size_lo
        sub_ts = (ts_ext << 24) | (ts_hi << 8) | ts_lo
        pos += _AGG_HEADER.size
        if pos + size > end:
            raise ProtocolError("aggregate sub-message runs past the aggregate message")
        if first is None:
            first = sub_ts
        rebased = (timestamp + sub_ts - first) & _MASK32
        parts.append(AggregatePart(int(type_id), rebased, payload[pos : pos + size]))
        pos += size + 4
    return parts


def encode_aggregate(parts: list[AggregatePart]) -> bytes:
    """Build an aggregate body (for tests and load generators)."""
    out: list[bytes] = []
    for part in parts:
        size = len(part.payload)
        ts = part.timestamp & _MASK32
        header = _AGG_HEADER.pack(
            part.type_id, size >> 8, size & 0xFF, (ts >> 8) & 0xFFFF, ts & 0xFF, ts >> 24, 0, 0
        )
        out.extend((header, part.payload, _U32.pack(_AGG_HEADER.size + size)))
    return b"".join(out)


# --------------------------------------------------------------------------- timestamps


class TimestampUnwrapper:
    """Turns 32-bit wrapping millisecond timestamps into a monotonically extended int.

    Each step is the signed 32-bit difference to the previous value, so a wrap after
    ~49.7 days continues upwards while a small step backwards stays a step backwards.
    Use one per (message stream, message type): audio and video interleave with
    different timelines.
    """

    __slots__ = ("_last", "_last_raw")

    def __init__(self) -> None:
        self._last_raw: int | None = None
        self._last = 0

    def unwrap(self, raw: int) -> int:
        last_raw = self._last_raw
        if last_raw is None:
            self._last = raw
        else:
            diff = (raw - last_raw) & _MASK32
            self._last += diff - 0x100000000 if diff >= 0x80000000 else diff
        self._last_raw = raw
        return self._last
