"""H.264 out of RTP: any arrival order within the reorder window gives the sender's
pictures back; loss is NACKed, then given up with a keyframe request; no input makes
anything but RtpError escape."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.media.rtp import RtpError
from server.media.rtp_h264 import AccessUnit, Bounds, H264RtpReceiver

PT, RTX_PT, SSRC, RTX_SSRC = 102, 103, 0x1234, 0x5678
MTU = 1200


def rtp(seq: int, ts: int, marker: bool, payload: bytes, pt: int = PT, ssrc: int = SSRC) -> bytes:
    head = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq % 65536, ts % 2**32, ssrc)
    return head + payload


def payloads(nals: list[bytes], mtu: int = MTU) -> list[bytes]:
    """RFC 6184 non-interleaved mode: small NALs aggregated (STAP-A), large ones split (FU-A)."""
    out: list[bytes] = []
    small: list[bytes] = []

    def flush() -> None:
        if len(small) == 1:
            out.append(small[0])
        elif small:
            out.append(bytes([24]) + b"".join(len(n).to_bytes(2, "big") + n for n in small))
        small.clear()

    for nal in nals:
        if len(nal) > mtu:
            flush()
            head, body = nal[0], nal[1:]
            chunks = [body[i : i + mtu] for i in range(0, len(body), mtu)]
            for n, chunk in enumerate(chunks):
                fu = (0x80 if n == 0 else 0) | (0x40 if n == len(chunks) - 1 else 0) | head & 0x1F
                out.append(bytes([head & 0xE0 | 28, fu]) + chunk)
        elif sum(len(n) + 2 for n in small) + len(nal) + 3 > mtu:
            flush()
            small.append(nal)
        else:
            small.append(nal)
    flush()
    return out


def packets(units: list[list[bytes]], seq0: int = 0, ts0: int = 0) -> list[bytes]:
    out: list[bytes] = []
    for n, nals in enumerate(units):
        parts = payloads(nals)
        for k, part in enumerate(parts):
            out.append(rtp(seq0 + len(out), ts0 + n * 3000, k == len(parts) - 1, part))
    return out


def receiver(**bounds: float) -> H264RtpReceiver:
    return H264RtpReceiver(frozenset({PT}), {RTX_PT: PT}, Bounds(**bounds))  # type: ignore[arg-type]


def feed(rx: H264RtpReceiver, items: list[bytes], now: float = 0.0) -> list[AccessUnit]:
    out: list[AccessUnit] = []
    for item in items:
        out += rx.packet(item, now)
    return out


nal = st.builds(
    lambda kind, body: bytes([0x60 | kind]) + body,
    st.sampled_from([1, 5, 6, 7, 8]),
    st.binary(min_size=1, max_size=3000),
)
units = st.lists(st.lists(nal, min_size=1, max_size=5), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(units, st.randoms(use_true_random=False), st.integers(0, 65535), st.integers(0, 2**32 - 1))
def test_reordered_and_duplicated_packets_give_the_pictures_back(
    sent: list[list[bytes]], rnd: object, seq0: int, ts0: int
) -> None:
    wire = packets(sent, seq0, ts0)
    shuffled = list(wire)
    for i in range(1, len(shuffled) - 1):  # local reordering, as a network does (the
        # first packet starts the sequence: one before it is late)
        if rnd.random() < 0.3:  # type: ignore[attr-defined]
            shuffled[i], shuffled[i + 1] = shuffled[i + 1], shuffled[i]
    shuffled += [shuffled[len(shuffled) // 2]]  # a duplicate
    rx = receiver()
    got = feed(rx, shuffled)
    assert [u.nals for u in got] == sent
    assert [u.timestamp for u in got] == [3000 * n for n in range(len(sent))]
    assert not rx.keyframe_wanted


def test_a_gap_is_nacked_and_filled_by_rtx_in_time() -> None:
    wire = packets([[b"\x65" + bytes(5000)], [b"\x41" + bytes(100)]])
    rx = receiver()
    assert feed(rx, wire[:2]) == []
    assert feed(rx, wire[3:]) == []
    assert rx.take_nacks() == [2]
    assert rx.take_nacks() == []  # once per new gap
    lost = wire[2]
    retransmitted = rtp(77, 0, False, lost[12:14] and b"\x00\x02" + lost[12:], RTX_PT, RTX_SSRC)
    got = feed(rx, [retransmitted], now=0.1)
    assert [u.nals for u in got] == [[b"\x65" + bytes(5000)], [b"\x41" + bytes(100)]]


def test_a_gap_not_filled_in_time_drops_the_picture_and_asks_for_a_keyframe() -> None:
    sent = [[b"\x65" + bytes(3000)], [b"\x41" + bytes(10)], [b"\x41" + bytes(20)]]
    wire = packets(sent)
    rx = receiver(reorder_seconds=0.2)
    assert feed(rx, [wire[0], *wire[2:]], now=0.0) == []
    got = rx.packet(rtp(len(wire), 9000, True, b"\x41\x00"), now=0.5)
    assert [u.nals for u in got] == [[b"\x41" + bytes(10)], [b"\x41" + bytes(20)], [b"\x41\x00"]]
    assert rx.keyframe_wanted and rx.lost == 1 and rx.bad_units == 1


def test_the_reorder_buffer_is_bounded_in_packets() -> None:
    rx = receiver(reorder_packets=4, reorder_seconds=10.0)
    rx.packet(rtp(0, 0, True, b"\x41\x00"), 0.0)
    for seq in range(2, 7):
        rx.packet(rtp(seq, seq * 3000, True, b"\x41\x01"), 0.0)
    assert len(rx._held) <= 4
    assert rx.lost == 1


def test_sequence_and_timestamp_wrap() -> None:
    sent = [[b"\x41" + bytes([n])] for n in range(6)]
    got = feed(receiver(), packets(sent, seq0=65533, ts0=2**32 - 6000))
    assert [u.timestamp for u in got] == [3000 * n for n in range(6)]


def test_receiver_report_counts_loss() -> None:
    rx = receiver(reorder_seconds=0.0)
    for seq in (10, 11, 13, 14):
        rx.packet(rtp(seq, seq * 3000, True, b"\x41\x00"), 1.0)
    report = rx.report()
    assert (report.packets_lost, report.highest_sequence) == (1, 14)
    assert report.fraction_lost == 256 // 5


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=20))
def test_only_rtp_errors_escape(garbage: list[bytes]) -> None:
    rx = receiver()
    for n, data in enumerate(garbage):
        if len(data) > 1:  # mostly our payload type, so the payload parsers run
            data = bytes([0x80 | data[0] & 0x3F, data[1] & 0x80 | PT]) + data[2:]
        with contextlib.suppress(RtpError):
            rx.packet(data, n * 0.1)


def test_malformed_headers_are_rtp_errors() -> None:
    for data in (b"\x80", b"\x00" * 12, b"\x90" + bytes(11), b"\xa0" + bytes(12)):
        with pytest.raises(RtpError):
            receiver().packet(data, 0.0)
