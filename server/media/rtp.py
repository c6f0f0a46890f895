"""What every RTP stream we receive shares (RFC 3550): the fixed header, sequence
numbers unwrapped to a count that never wraps, and the loss figures a receiver report
carries. Pure: no I/O, no clock; the only exception that leaves it is ``RtpError``."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from server.media.errors import MediaFormatError

_HEADER = struct.Struct("!HII")
SEQ_MOD = 1 << 16
_U32 = 1 << 32


class RtpError(MediaFormatError):
    """A packet that is not RTP a publisher could have sent (the packet is dropped)."""


@dataclass(frozen=True, slots=True)
class RtpHeader:
    kind: int
    """The payload type."""
    marker: bool
    seq: int
    timestamp: int
    ssrc: int
    start: int
    """Where the payload starts; it ends at ``end`` (before any padding)."""
    end: int


def parse_header(data: bytes) -> RtpHeader:
    """The fixed header, CSRCs, extension and padding of one decrypted packet."""
    if len(data) < 12 or data[0] >> 6 != 2:
        raise RtpError("not an RTP version 2 packet")
    first, second = data[0], data[1]
    seq, ts, ssrc = _HEADER.unpack_from(data, 2)
    pos = 12 + 4 * (first & 0x0F)
    end = len(data)
    if first & 0x10:
        if pos + 4 > end:
            raise RtpError("RTP header extension cut short")
        pos += 4 + 4 * int.from_bytes(data[pos + 2 : pos + 4], "big")
    if first & 0x20:
        pad = data[-1]
        if pad == 0 or pad > end - pos:
            raise RtpError("bad RTP padding")
        end -= pad
    if pos > end:
        raise RtpError("RTP header longer than the packet")
    return RtpHeader(second & 0x7F, bool(second & 0x80), seq, ts, ssrc, pos, end)


@dataclass(slots=True)
class Report:
    """What an RTCP receiver report says about the stream (RFC 3550 6.4.1)."""

    fraction_lost: int
    packets_lost: int
    highest_sequence: int


class LossCounter:
    """Sequence numbers seen, as the extended highest one and a count; the report."""

    __slots__ = ("_base", "_expected_prior", "_received_prior", "highest", "received")

    def __init__(self) -> None:
        self.highest: int | None = None
        """Extended: the first packet's number plus ``SEQ_MOD``, counting every wrap."""
        self.received = 0
        self._base = 0
        self._expected_prior = 0
        self._received_prior = 0

    def extend(self, seq: int) -> int:
        """``seq`` as an extended number next to the highest one seen (does not count it)."""
        if self.highest is None:
            self._base = self.highest = seq + SEQ_MOD
            return self.highest
        return self.highest + ((seq - self.highest + 0x8000) % SEQ_MOD) - 0x8000

    def restart(self, ext: int) -> None:
        """The sender's numbers jumped: count on from ``ext``."""
        self.highest = ext

    def report(self) -> Report:
        """Loss since the previous report and in total, for an RTCP receiver report."""
        if self.highest is None:
            return Report(0, 0, 0)
        expected = self.highest - self._base + 1
        interval = expected - self._expected_prior
        got = self.received - self._received_prior
        self._expected_prior, self._received_prior = expected, self.received
        lost = interval - got
        fraction = 0 if interval <= 0 or lost <= 0 else (lost << 8) // interval
        total = max(-(1 << 23), min(expected - self.received, (1 << 23) - 1))
        return Report(min(fraction, 255), total, (self.highest - SEQ_MOD) % _U32)


class TimestampUnwrapper:
    """32-bit RTP timestamps as ticks since the first one, never wrapping."""

    __slots__ = ("_ext", "_last", "_origin")

    def __init__(self) -> None:
        self._origin: int | None = None
        self._ext = 0
        self._last = 0

    def __call__(self, ts: int) -> int:
        if self._origin is None:
            self._origin = self._ext = self._last = ts
        self._ext += ((ts - self._last + (1 << 31)) % _U32) - (1 << 31)
        self._last = ts
        return self._ext - self._origin
