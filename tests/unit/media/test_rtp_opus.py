"""Opus out of RTP: arrival order, late and duplicate packets dropped, timestamps from
the first packet, loss counted for receiver reports."""

from __future__ import annotations

import contextlib
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from server.media.rtp import RtpError
from server.media.rtp_opus import OpusRtpReceiver

PT = 111


def rtp(seq: int, ts: int, payload: bytes = b"\xfc\x01", ssrc: int = 5) -> bytes:
    return struct.pack("!BBHII", 0x80, PT, seq % 65536, ts % 2**32, ssrc) + payload


def test_frames_in_arrival_order_with_late_and_duplicates_dropped() -> None:
    rx = OpusRtpReceiver(frozenset({PT}))
    seqs = [65534, 65535, 1, 0, 1, 2]  # wraps; 0 arrives after 1; 1 twice
    got = [rx.packet(rtp(seq, 2**32 - 1920 + ((seq - 65534) % 65536) * 960)) for seq in seqs]
    assert [g[0] if g else None for g in got] == [0, 960, 2880, None, None, 3840]
    report = rx.report()
    assert (report.packets_lost, report.highest_sequence) == (1, 2 + 65536)


def test_other_payload_types_and_sources_are_not_ours() -> None:
    rx = OpusRtpReceiver(frozenset({PT}))
    assert rx.packet(rtp(1, 0)) == (0, b"\xfc\x01")
    assert rx.packet(rtp(2, 960, ssrc=6)) is None
    assert rx.packet(struct.pack("!BBHII", 0x80, 96, 3, 0, 5) + b"\x00") is None


def test_a_sender_starting_over_far_behind_is_followed() -> None:
    rx = OpusRtpReceiver(frozenset({PT}))
    rx.packet(rtp(30000, 0))
    assert rx.packet(rtp(10, 960)) is not None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=20))
def test_only_rtp_errors_escape(garbage: list[bytes]) -> None:
    rx = OpusRtpReceiver(frozenset({PT}))
    for data in garbage:
        if len(data) > 1:
            data = bytes([0x80 | data[0] & 0x3F, data[1] & 0x80 | PT]) + data[2:]
        with contextlib.suppress(RtpError):
            rx.packet(data)
