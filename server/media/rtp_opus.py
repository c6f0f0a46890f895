"""Opus from the RTP packets of one WebRTC publisher (RFC 7587: one packet, one Opus
frame; nothing to reassemble).

Packets are taken in arrival order: one that comes after a later one is dropped rather
than waited for, because the AAC transcoder fills gaps with silence anyway and a
reorder buffer would delay every packet for the sake of a rare one. Pure: no I/O, no
clock; the only exception that leaves it is ``RtpError``.
"""

from __future__ import annotations

from server.media.rtp import LossCounter, Report, TimestampUnwrapper, parse_header

_RESYNC = 0x2000
"""A sequence number this far behind the highest one is a new start, not a late packet."""


class OpusRtpReceiver:
    """Packets in; ``(timestamp in 48 kHz ticks from the first packet, opus packet)`` out."""

    def __init__(self, payload_types: frozenset[int]) -> None:
        self.payload_types = payload_types
        self.ssrc: int | None = None
        self.loss = LossCounter()
        self._timestamp = TimestampUnwrapper()

    def packet(self, data: bytes) -> tuple[int, bytes] | None:
        """One decrypted RTP packet; its Opus frame, or None (late, duplicate, empty,
        or not ours)."""
        head = parse_header(data)
        if head.kind not in self.payload_types:
            return None
        if self.ssrc is None:
            self.ssrc = head.ssrc
        elif head.ssrc != self.ssrc:
            return None
        loss = self.loss
        ext = loss.extend(head.seq)
        assert loss.highest is not None
        if loss.received and 0 <= loss.highest - ext <= _RESYNC:
            return None  # late or duplicate
        loss.highest = ext  # further back than that: the sender started over
        loss.received += 1
        if head.start == head.end:
            return None
        return self._timestamp(head.timestamp), data[head.start : head.end]

    def report(self) -> Report:
        return self.loss.report()
