"""The Opus -> AAC hand-over: batches of the Opus timeline, AAC on a gapless clock."""

from __future__ import annotations

from fractions import Fraction
from itertools import pairwise

import av
import numpy as np

from server.encode.audio import SAMPLES_PER_FRAME
from server.media.frame import TIMEBASE, Codec
from server.webrtc.audio import (
    BATCH_TICKS,
    MAX_BATCH_PACKETS,
    OPUS_RATE,
    OpusBatcher,
    OpusToAac,
)

PACKET = TIMEBASE // 50  # 20 ms


def test_packets_go_to_the_child_in_batches_spanning_100_ms() -> None:
    batcher = OpusBatcher()
    sent = [batcher.add(n * PACKET, bytes([n])) for n in range(12)]
    batches = [b for b in sent if b is not None]
    assert [len(b) for b in batches] == [5, 5]
    assert [pts for pts, _ in batches[1]] == [n * PACKET for n in range(5, 10)]
    assert BATCH_TICKS == 5 * PACKET
    rest = batcher.take()
    assert rest is not None and [p for _, p in rest] == [bytes([10]), bytes([11])]
    assert batcher.take() is None


def test_a_timeline_jump_back_or_standing_still_ends_the_batch() -> None:
    batcher = OpusBatcher()
    assert batcher.add(10 * PACKET, b"a") is None
    assert batcher.add(2 * PACKET, b"b") == [(10 * PACKET, b"a"), (2 * PACKET, b"b")]
    stuck = [batcher.add(0, b"x") for _ in range(MAX_BATCH_PACKETS)]
    assert stuck[:-1] == [None] * (MAX_BATCH_PACKETS - 1)
    assert stuck[-1] is not None and len(stuck[-1]) == MAX_BATCH_PACKETS


def _opus_packets(seconds: float) -> list[bytes]:
    encoder = av.CodecContext.create("libopus", "w")
    assert isinstance(encoder, av.AudioCodecContext)
    encoder.sample_rate, encoder.layout, encoder.format = OPUS_RATE, "stereo", "s16"
    encoder.bit_rate = 64_000
    encoder.time_base = Fraction(1, OPUS_RATE)
    out: list[bytes] = []
    step = 960
    t = np.arange(int(seconds * OPUS_RATE)) / OPUS_RATE
    tone = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    for n in range(len(tone) // step):
        chunk = np.repeat(tone[n * step : (n + 1) * step], 2).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="stereo")
        frame.sample_rate, frame.pts = OPUS_RATE, n * step
        out += [bytes(p) for p in encoder.encode(frame)]
    return out


def test_batches_become_aac_one_frame_apart_with_a_gap_filled_by_silence() -> None:
    packets = _opus_packets(1.0)
    work = OpusToAac(128_000)
    batcher = OpusBatcher()
    frames = []
    start = 1_000_000  # the bus timeline, in ticks
    for n, packet in enumerate(packets):
        pts = start + n * PACKET + (TIMEBASE // 2 if n >= len(packets) // 2 else 0)  # 0.5 s lost
        if (batch := batcher.add(pts, packet)) is not None:
            frames += work.batch(batch)
    assert all(f.codec == Codec.AAC and f.keyframe for f in frames)
    step = SAMPLES_PER_FRAME * TIMEBASE // OPUS_RATE
    assert frames[0].pts == start
    assert {b.pts - a.pts for a, b in pairwise(frames)} == {step}
    covered = frames[-1].pts - start
    sent = (len(packets) - 5) * PACKET + TIMEBASE // 2  # all but the pending tail, plus the gap
    assert abs(covered - sent) <= 2 * step
