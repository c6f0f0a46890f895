"""The SRT benchmark's own parts (no sockets): the looping MPEG-TS source every
publisher sends, and the relay's referee that judges loss recovery."""

from __future__ import annotations

import random

from bench.media import Sample
from bench.srt_loadgen import TsLoop
from bench.srt_relay import SETTLED_S, Referee
from tests.unit.media.avsource import decode_all, media


def test_passes_concatenate_into_one_valid_stream_with_rising_timestamps() -> None:
    source = media(seconds=2)
    assert source.video is not None and source.audio is not None
    loop = TsLoop(Sample(source.video, source.audio, list(source.frames)))
    passes = [loop.groups(k) for k in range(3)]
    assert loop.groups(2) is passes[2] and 0 not in loop._passes  # only two kept
    offsets = [g.offset for g in passes[1]]
    assert offsets == sorted(offsets) and offsets[-1] < loop.period
    data = b"".join(g.wire for groups in passes for g in groups)
    decoded = decode_all(data, "mpegts")
    assert decoded["errors"] == []
    per_pass = sum(1 for f in loop._frames if f.track.value == "video")
    assert decoded["decoded"]["video"] == 3 * per_pass
    for pts in decoded["pts"].values():
        assert pts == sorted(pts) and len(set(pts)) == len(pts)
    assert 0.8 * loop.bitrate < len(data) * 8 / (3 * loop.period) < 1.2 * loop.bitrate


def _data(seq: int, rexmit: bool = False) -> bytes:
    flags = 0xC0000000 | (0x04000000 if rexmit else 0) | 1
    return seq.to_bytes(4, "big") + flags.to_bytes(4, "big") + bytes(8) + b"\x47" * 188


def test_referee_counts_recovered_in_time_late_and_lost() -> None:
    ref = Referee(loss=0.0, latency_s=0.12, rng=random.Random(1))
    addr = ("127.0.0.1", 5000)
    ref.loss = 1.0  # drop the first copies of 1, 2 and 3
    assert not any(ref.passes(addr, _data(seq), 0.0) for seq in (1, 2, 3))
    assert not ref.passes(addr, _data(1, rexmit=True), 0.01)  # a dropped retransmission
    ref.loss = 0.0
    control = (0x80020000).to_bytes(4, "big") + bytes(12)  # an ACK passes whatever the loss
    assert ref.passes(addr, control, 0.02)
    assert ref.passes(addr, _data(1, rexmit=True), 0.05)  # in time
    assert ref.passes(addr, _data(2, rexmit=True), 0.5)  # too late for 120 ms
    assert ref.passes(("127.0.0.1", 5001), _data(3), 0.05)  # another caller's seq 3
    assert ref.passes(addr, _data(4), 0.05)
    early = ref.snapshot(0.5)
    assert (early["dropped"], early["recovered"], early["recovered_in_time"]) == (4, 2, 1)
    assert (early["unrecovered"], early["pending"]) == (0, 1)  # seq 3 might still come
    final = ref.snapshot(SETTLED_S + 0.1)
    assert (final["unrecovered"], final["pending"]) == (1, 0)
    assert final["recovered_ratio"] == round(1 / 3, 5)  # in time / (recovered + lost)
    assert final["forwarded"] == 5


def test_a_window_is_judged_on_its_own_drops() -> None:
    from bench.srt_scenarios import judged

    ref = Referee(loss=1.0, latency_s=0.12, rng=random.Random(1))
    addr = ("127.0.0.1", 5000)
    assert not ref.passes(addr, _data(1), 0.0)  # before the window: lost for good
    before = ref.snapshot(1.5)
    assert before["unrecovered"] == 1
    assert not any(ref.passes(addr, _data(seq), 2.0) for seq in (2, 3, 4))
    ref.loss = 0.0
    assert ref.passes(addr, _data(2, rexmit=True), 2.05)  # in time
    assert ref.passes(addr, _data(3, rexmit=True), 2.5)  # late
    after = judged(before, ref.snapshot(2.0 + SETTLED_S + 0.2))  # 4 lost in the window
    assert (after["dropped"], after["recovered"], after["recovered_in_time"]) == (3, 2, 1)
    assert after["unrecovered"] == 1
    assert after["recovered_ratio"] == round(1 / 3, 5)
    assert judged(before, before)["recovered_ratio"] is None


def test_the_issues_rows_are_planned_unless_counts_are_given() -> None:
    from bench.srt_scenarios import HEAVY_LOSS, LOSS, planned_runs

    assert planned_runs("A", False, None) == [("A", 0.0, [1, 10, 50, 100])]
    assert planned_runs("B", False, None) == [("B", LOSS, [1, 10, 50]), ("B", HEAVY_LOSS, [10])]
    assert planned_runs("AB", True, [5]) == [("A", 0.0, [5]), ("B", LOSS, [5]), ("B", 0.05, [5])]
