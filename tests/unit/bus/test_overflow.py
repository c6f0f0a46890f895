from __future__ import annotations

import asyncio

import pytest

from server.bus import ConfigChange, Discontinuity, Stream, StreamLimits
from server.media.frame import Frame, TrackKind

from .helpers import AUDIO_CONFIG, VIDEO_CONFIG, VIDEO_CONFIG_2, audio, drain, video

# Against the compiled modules and their pure-Python twins (tests/accel_twins.py).
pytestmark = pytest.mark.usefixtures("implementation")


def test_overflow_drops_to_next_keyframe_and_counts() -> None:
    stream = Stream("s")
    stream.set_config(VIDEO_CONFIG)
    stream.set_config(AUDIO_CONFIG)
    reader = stream.reader("slow", max_frames=16)
    stream.publish(video(0, True))
    for n in range(1, 14):
        stream.publish(video(n))  # 2 configs + 14 frames = 16 items: full
    stream.publish(audio(0))  # overflow: 14 queued + this one dropped
    stream.publish(video(14))  # still waiting for a keyframe: dropped
    stream.publish(audio(1))  # dropped too: A/V restart together at the keyframe
    stream.publish(video(15, True))
    stream.publish(audio(2))
    assert drain(reader) == [
        ConfigChange(VIDEO_CONFIG),
        ConfigChange(AUDIO_CONFIG),
        video(15, True),
        audio(2),
    ]
    stats = reader.stats()
    assert (stats.dropped_frames, stats.resyncs, stats.delivered_frames) == (17, 1, 2)
    assert not stats.waiting_for_keyframe


def test_overflow_keeps_latest_markers_in_order() -> None:
    stream = Stream("s")
    stream.set_config(VIDEO_CONFIG)
    reader = stream.reader("slow", max_frames=16)
    stream.publish(video(0, True))
    stream.mark_discontinuity()
    stream.set_config(VIDEO_CONFIG_2)
    for n in range(1, 30):
        stream.publish(video(n))
    stream.publish(video(30, True))
    assert drain(reader) == [Discontinuity(), ConfigChange(VIDEO_CONFIG_2), video(30, True)]


def test_keyframe_that_overflows_starts_the_resync_immediately() -> None:
    stream = Stream("s")
    reader = stream.reader("slow", max_frames=16)
    for n in range(16):
        stream.publish(video(n, key=n == 0))
    stream.publish(video(16, True))
    assert drain(reader) == [video(16, True)]
    assert reader.dropped_frames == 16


def test_audio_only_overflow_drops_oldest() -> None:
    stream = Stream("a")
    stream.set_config(AUDIO_CONFIG)
    reader = stream.reader("slow", max_frames=16)
    for n in range(40):
        stream.publish(audio(n))
    items = drain(reader)
    assert items[0] == ConfigChange(AUDIO_CONFIG)  # markers survive
    assert items[1:] == [audio(n) for n in range(25, 40)]
    assert reader.dropped_frames == 25


def test_byte_bound() -> None:
    stream = Stream("s")
    reader = stream.reader("slow", max_bytes=5000)
    for n in range(100):
        stream.publish(video(n, key=n % 10 == 0, size=1000))
        assert reader.stats().queued_bytes <= 5000
    assert reader.dropped_frames > 0


def test_frame_larger_than_the_ring_is_dropped() -> None:
    stream = Stream("s")
    reader = stream.reader("tiny", max_bytes=100)
    stream.publish(video(0, True, size=400))
    stream.publish(video(1, True, size=40))
    assert drain(reader) == [video(1, True, size=40)]
    assert reader.dropped_frames == 1


def test_marker_flood_stays_bounded() -> None:
    stream = Stream("s")
    reader = stream.reader("stalled", max_frames=16)
    stream.publish(video(0, True))
    for n in range(10_000):
        stream.set_config(VIDEO_CONFIG if n % 2 else VIDEO_CONFIG_2)
        stream.set_metadata({"n": n})
        stream.mark_discontinuity()
        assert reader.stats().queued_items <= 16
    assert stream.stats().gop_items <= stream.limits.gop_max_frames + 1


def test_gop_too_large_for_a_joiner_means_waiting_for_the_next_keyframe() -> None:
    stream = Stream("s")
    stream.set_config(VIDEO_CONFIG)
    for n in range(40):
        stream.publish(video(n, key=n == 0))
    reader = stream.reader("small", max_frames=16)
    assert drain(reader) == [ConfigChange(VIDEO_CONFIG)]
    stream.publish(video(40))
    stream.publish(video(41, True))
    assert drain(reader) == [video(41, True)]
    assert reader.dropped_frames == 0


def test_gop_cache_bound_drops_the_cache_until_next_keyframe() -> None:
    stream = Stream("s", StreamLimits(gop_max_frames=10))
    stream.set_config(VIDEO_CONFIG)
    for n in range(11):
        stream.publish(video(n, key=n == 0))
    assert stream.stats().gop_items == 0
    assert drain(stream.reader("late")) == [ConfigChange(VIDEO_CONFIG)]
    stream.publish(video(11, True))
    assert stream.stats().gop_items == 1


async def test_stalled_reader_bounded_and_other_reader_unaffected() -> None:
    stream = Stream("s")
    stream.set_config(VIDEO_CONFIG)
    stream.set_config(AUDIO_CONFIG)
    stalled = stream.reader("stalled", max_frames=256, max_bytes=64 * 1024)
    active = stream.reader("active")
    received: list[Frame] = []

    async def consume() -> None:
        async for item in active:
            if isinstance(item, Frame):
                received.append(item)

    task = asyncio.create_task(consume())
    total = 100_000
    peak_items = peak_bytes = 0
    for n in range(total):
        if n % 3 == 2:
            stream.publish(audio(n, size=16))
        else:
            stream.publish(video(n, key=n % 60 == 0, size=64))
        if n % 500 == 499:
            stats = stalled.stats()
            peak_items = max(peak_items, stats.queued_items)
            peak_bytes = max(peak_bytes, stats.queued_bytes)
            await asyncio.sleep(0)  # let the active consumer run
    stream.end()
    await asyncio.wait_for(task, 5)
    assert len(received) == total and active.dropped_frames == 0
    assert [f.dts for f in received[:3]] == [0, 3000, 2 * 1920]
    assert peak_items <= 256 and peak_bytes <= 64 * 1024
    stats = stalled.stats()
    assert stats.dropped_frames + stats.queued_frames == total
    assert stats.resyncs > 100


def test_stalled_reader_accounting_is_exact() -> None:
    """Every published frame is either still queued or counted as dropped."""
    stream = Stream("s")
    stalled = stream.reader("stalled", max_frames=1024)
    for n in range(20_000):
        stream.publish(video(n, key=n % 30 == 0))
    assert stalled.stats().queued_items <= 1024
    assert stalled.stats().queued_frames + stalled.dropped_frames == 20_000


def test_data_track_frames_are_carried() -> None:
    stream = Stream("s")
    reader = stream.reader("r")
    frame = Frame(TrackKind.DATA, "id3", 0, 0, True, b"TAG")
    stream.publish(frame)
    assert drain(reader) == [frame]
