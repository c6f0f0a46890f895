"""H.264 access units from the RTP packets of one WebRTC publisher (RFC 3550, RFC 6184
single NAL / STAP-A / FU-A, RFC 4588 RTX), with a bounded reorder buffer and the list
of sequence numbers to NACK.

Why not aiortc's receiver: its per-packet path (header-extension parsing, a bitrate
estimator, a generic jitter buffer, a decoder hand-off) costs several times what a
4 Mbit/s publisher's ~400 packets a second need; this is the part of it WHIP uses.
Pure: no I/O, no clock (``now`` is passed in); the only exception that leaves it is
``RtpError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from server.media.rtp import LossCounter, Report, TimestampUnwrapper, parse_header

_RESYNC = 0x2000
"""A sequence number this far from the highest one is a new start, not loss or reordering."""
NAL_STAP_A = 24
NAL_FU_A = 28


@dataclass(frozen=True, slots=True)
class AccessUnit:
    """One picture's NAL units (no start codes or lengths), in decoding order.

    ``timestamp`` is in RTP ticks (90 kHz) from the stream's first packet, unwrapped.
    """

    timestamp: int
    nals: list[bytes]


@dataclass(frozen=True, slots=True)
class Bounds:
    """What a peer may make us hold; all are the caller's settings."""

    reorder_packets: int = 256
    """Packets held behind a gap; one more and the gap is given up."""
    reorder_seconds: float = 0.2
    """How long the oldest held packet waits for a gap to fill (a NACK round trip)."""
    max_nacks: int = 256
    """Missing sequence numbers remembered for NACKs."""
    max_access_unit: int = 8 * 1024 * 1024
    """Bytes of one picture; a larger one is dropped."""


class H264RtpReceiver:
    """Packets in (any order, duplicated, retransmitted over RTX), access units out."""

    def __init__(
        self, payload_types: frozenset[int], rtx: Mapping[int, int], bounds: Bounds
    ) -> None:
        self.payload_types = payload_types
        self.rtx = dict(rtx)
        """RTX payload type -> the payload type it retransmits."""
        self.bounds = bounds
        self.ssrc: int | None = None
        self.loss = LossCounter()
        self.lost = 0
        """Packets given up on (gaps no retransmission filled in time)."""
        self.bad_units = 0
        self.keyframe_wanted = False
        """Set when a picture was lost: the caller sends a PLI and clears it."""
        self._next: int | None = None  # extended seq of the next packet to depacketize
        self._held: dict[int, tuple[int, bool, bytes, float]] = {}
        self._missing: dict[int, None] = {}
        self._nack_due = False
        self._timestamp = TimestampUnwrapper()
        self._unit_ts: int | None = None
        self._unit: list[bytes] = []
        self._unit_size = 0
        self._fu: bytearray | None = None
        self._broken = False

    # ------------------------------------------------------------------ packets

    def packet(self, data: bytes, now: float) -> list[AccessUnit]:
        """Take one decrypted RTP packet; the access units it completes."""
        head = parse_header(data)
        kind, seq, pos, end = head.kind, head.seq, head.start, head.end
        if kind in self.rtx:
            if end - pos < 3:
                return []  # padding for bandwidth probes: nothing to retransmit
            seq = int.from_bytes(data[pos : pos + 2], "big")
            pos += 2
        elif kind in self.payload_types:
            if self.ssrc is None:
                self.ssrc = head.ssrc
            elif head.ssrc != self.ssrc:
                return []  # a source we did not lock onto
        else:
            return []
        return self._sequenced(seq, head.timestamp, head.marker, data[pos:end], now)

    def _sequenced(
        self, seq: int, ts: int, marker: bool, payload: bytes, now: float
    ) -> list[AccessUnit]:
        loss = self.loss
        ext = loss.extend(seq)
        if self._next is None:
            self._next = ext
        assert loss.highest is not None
        if abs(ext - loss.highest) > _RESYNC:
            self._resync(ext)
        if ext < self._next or ext in self._held:
            return []  # late or duplicate
        loss.received += 1
        if ext > loss.highest:
            for missing in range(max(loss.highest + 1, ext - self.bounds.max_nacks), ext):
                self._missing[missing] = None
                self._nack_due = True
            loss.highest = ext
            while len(self._missing) > self.bounds.max_nacks:
                del self._missing[next(iter(self._missing))]
        else:
            self._missing.pop(ext, None)
        self._held[ext] = (ts, marker, payload, now)
        return self._drain(now)

    def _drain(self, now: float) -> list[AccessUnit]:
        out: list[AccessUnit] = []
        held = self._held
        while held:
            assert self._next is not None
            entry = held.pop(self._next, None)
            if entry is not None:
                self._next += 1
                self._depacketize(entry[0], entry[1], entry[2], out)
                continue
            oldest = min(held)
            waited = now - held[oldest][3]
            if len(held) <= self.bounds.reorder_packets and waited < self.bounds.reorder_seconds:
                break
            self._give_up(oldest)
        return out

    def _resync(self, ext: int) -> None:
        """The sender's sequence numbers jumped (a restarted encoder): start over there."""
        self.lost += len(self._held)
        self._held.clear()
        self._missing.clear()
        self.loss.restart(ext)
        self._next = ext
        self._broken = True
        self.keyframe_wanted = True

    def _give_up(self, upto: int) -> None:
        """The gap before ``upto`` will not fill: the picture it cut is lost."""
        assert self._next is not None
        self.lost += upto - self._next
        for seq in range(self._next, upto):
            self._missing.pop(seq, None)
        self._next = upto
        self._broken = True
        self.keyframe_wanted = True

    def take_nacks(self) -> list[int]:
        """Sequence numbers (16-bit) to NACK now: all still missing, when a new gap
        opened since the last call (the sender drops what it no longer has)."""
        if not self._nack_due:
            return []
        self._nack_due = False
        return sorted(seq & 0xFFFF for seq in self._missing)

    def report(self) -> Report:
        return self.loss.report()

    # ------------------------------------------------------------------ payloads

    def _depacketize(self, ts: int, marker: bool, payload: bytes, out: list[AccessUnit]) -> None:
        """One in-order packet into the picture being assembled; a picture ends at its
        marker bit, or (its marker packet lost) at the next picture's timestamp."""
        if self._unit_ts is not None and ts != self._unit_ts:
            self._finish(out)
        self._unit_ts = ts
        if payload:
            self._payload(payload)
        if marker:
            self._finish(out)

    def _payload(self, payload: bytes) -> None:
        if self._unit_size > self.bounds.max_access_unit:
            self._unit, self._fu, self._broken = [], None, True  # dropped, and held no more
            return
        kind = payload[0] & 0x1F
        if 0 < kind < NAL_STAP_A:
            self._end_fu_early()
            self._add(payload)
        elif kind == NAL_STAP_A:
            self._end_fu_early()
            pos = 1
            while pos < len(payload):
                size = int.from_bytes(payload[pos : pos + 2], "big")
                if size == 0 or pos + 2 + size > len(payload):
                    self._broken = True
                    return
                self._add(payload[pos + 2 : pos + 2 + size])
                pos += 2 + size
        elif kind == NAL_FU_A and len(payload) > 2:
            self._fragment(payload)
        else:
            self._broken = True  # STAP-B, MTAP, FU-B (interleaved mode) or a cut FU-A

    def _fragment(self, payload: bytes) -> None:
        header = payload[1]
        if header & 0x80:  # start
            self._end_fu_early()
            self._fu = bytearray(((payload[0] & 0xE0) | (header & 0x1F),))
        if self._fu is None:
            self._broken = True  # the start fragment was lost
            return
        self._fu += payload[2:]
        self._unit_size += len(payload) - 2
        if header & 0x40:  # end
            self._unit.append(bytes(self._fu))
            self._fu = None

    def _end_fu_early(self) -> None:
        if self._fu is not None:
            self._fu = None
            self._broken = True

    def _add(self, nal: bytes) -> None:
        self._unit.append(nal)
        self._unit_size += len(nal)

    def _finish(self, out: list[AccessUnit]) -> None:
        ts, nals = self._unit_ts, self._unit
        broken = self._broken or self._fu is not None
        self._unit_ts, self._unit, self._unit_size = None, [], 0
        self._fu, self._broken = None, False
        if broken:  # even with nothing left of it: the picture is lost all the same
            self.bad_units += 1
            self.keyframe_wanted = True
            return
        if ts is None or not nals:
            return
        out.append(AccessUnit(self._timestamp(ts), nals))
