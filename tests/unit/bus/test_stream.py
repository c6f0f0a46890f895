from __future__ import annotations

import asyncio
import dataclasses

import pytest

from server.bus import (
    ConfigChange,
    Discontinuity,
    EndOfStream,
    MetadataChange,
    Registry,
    Stream,
    StreamEndedError,
    StreamExistsError,
    StreamLimits,
    TracksAnnounced,
)
from server.media.frame import Frame, TrackKind

from .helpers import AUDIO_CONFIG, VIDEO_CONFIG, VIDEO_CONFIG_2, audio, drain, video

# Against the compiled modules and their pure-Python twins (tests/accel_twins.py).
pytestmark = pytest.mark.usefixtures("implementation")


def _configured() -> Stream:
    stream = Stream("s")
    stream.set_config(VIDEO_CONFIG)
    stream.set_config(AUDIO_CONFIG)
    return stream


def test_items_arrive_in_publish_order() -> None:
    stream = Stream("s")
    reader = stream.reader("r", "test")
    stream.set_config(VIDEO_CONFIG)
    stream.set_config(AUDIO_CONFIG)
    published = [video(0, key=True), audio(0), video(1), audio(1)]
    for frame in published[:2]:
        stream.publish(frame)
    stream.mark_discontinuity()
    for frame in published[2:]:
        stream.publish(frame)
    assert drain(reader) == [
        ConfigChange(VIDEO_CONFIG),
        ConfigChange(AUDIO_CONFIG),
        published[0],
        published[1],
        Discontinuity(),
        published[2],
        published[3],
    ]
    assert reader.stats().delivered_frames == 4


def test_late_joiner_gets_configs_then_latest_gop() -> None:
    stream = _configured()
    stream.set_metadata({"encoder": "obs"})
    for frame in (video(0, True), audio(0), video(1), video(2, True), audio(1), video(3)):
        stream.publish(frame)
    reader = stream.reader("late")
    assert drain(reader) == [
        ConfigChange(VIDEO_CONFIG),
        ConfigChange(AUDIO_CONFIG),
        MetadataChange({"encoder": "obs"}),
        video(2, True),
        audio(1),
        video(3),
    ]


def test_late_joiner_replays_mid_gop_config_change_in_place() -> None:
    stream = _configured()
    stream.publish(video(0, True))
    stream.set_config(VIDEO_CONFIG_2)
    stream.publish(video(1))
    assert drain(stream.reader("late")) == [
        ConfigChange(VIDEO_CONFIG),
        ConfigChange(AUDIO_CONFIG),
        video(0, True),
        ConfigChange(VIDEO_CONFIG_2),
        video(1),
    ]


def test_joiner_before_first_keyframe_waits_for_it_without_counting_drops() -> None:
    stream = _configured()
    stream.publish(audio(0))
    stream.publish(video(0))  # not a keyframe: nothing to start from
    reader = stream.reader("r")
    stream.publish(audio(1))
    stream.publish(video(1))
    stream.publish(video(2, True))
    stream.publish(audio(2))
    assert drain(reader) == [
        ConfigChange(VIDEO_CONFIG),
        ConfigChange(AUDIO_CONFIG),
        video(2, True),
        audio(2),
    ]
    assert reader.dropped_frames == 0


def test_audio_only_joiner_gets_a_bounded_recent_window() -> None:
    stream = Stream("a", StreamLimits(audio_window_frames=5, audio_window_ticks=90_000))
    stream.set_config(AUDIO_CONFIG)
    for n in range(100):
        stream.publish(audio(n))
    items = drain(stream.reader("r"))
    assert items[0] == ConfigChange(AUDIO_CONFIG)
    assert items[1:] == [audio(n) for n in range(95, 100)]
    stream2 = Stream("b", StreamLimits(audio_window_frames=100, audio_window_ticks=9600))
    for n in range(100):
        stream2.publish(audio(n))
    # 9600 ticks = 5 frame intervals: frames 94..99 are within the window
    assert drain(stream2.reader("r")) == [audio(n) for n in range(94, 100)]


def test_audio_window_folds_old_markers_into_the_base() -> None:
    stream = Stream("a", StreamLimits(audio_window_frames=3))
    stream.set_config(AUDIO_CONFIG)
    stream.publish(audio(0))
    new_config = dataclasses.replace(AUDIO_CONFIG, extradata=b"\x11\x90", sample_rate=48000)
    stream.set_config(new_config)
    for n in range(1, 6):
        stream.publish(audio(n))
    assert drain(stream.reader("r")) == [ConfigChange(new_config), audio(3), audio(4), audio(5)]


def test_config_and_metadata_dedup() -> None:
    stream = _configured()
    reader = stream.reader("r")
    assert not stream.set_config(VIDEO_CONFIG)
    assert stream.set_config(VIDEO_CONFIG_2)
    assert stream.set_metadata({"a": 1})
    assert not stream.set_metadata({"a": 1})
    assert drain(reader)[2:] == [ConfigChange(VIDEO_CONFIG_2), MetadataChange({"a": 1})]
    assert stream.video_config == VIDEO_CONFIG_2 and stream.audio_config == AUDIO_CONFIG
    assert dict(stream.metadata) == {"a": 1}


async def test_end_marker_and_async_iteration() -> None:
    stream = _configured()
    reader = stream.reader("r")
    stream.publish(video(0, True))
    stream.end("publisher left")
    got = [item async for item in reader]
    assert got == [ConfigChange(VIDEO_CONFIG), ConfigChange(AUDIO_CONFIG), video(0, True)]
    assert await reader.next() == EndOfStream("publisher left")
    assert await reader.next() == EndOfStream("publisher left")  # stays ended
    assert reader.closed and reader not in stream.readers
    with pytest.raises(StreamEndedError):
        stream.publish(video(1))
    with pytest.raises(StreamEndedError):
        stream.set_config(VIDEO_CONFIG_2)
    late = stream.reader("late")
    assert await late.next() == EndOfStream("publisher left")


async def test_next_waits_and_publish_wakes_it() -> None:
    stream = Stream("s")
    reader = stream.reader("r")
    task = asyncio.create_task(reader.next())
    await asyncio.sleep(0)
    assert not task.done()
    stream.publish(audio(7))
    assert await asyncio.wait_for(task, 1) == audio(7)


async def test_offered_waits_for_the_next_publish_even_with_items_queued() -> None:
    stream = Stream("s")
    reader = stream.reader("r")
    stream.publish(audio(1))
    task = asyncio.create_task(reader.offered(0.0, 5.0))
    await asyncio.sleep(0)
    assert not task.done()  # a queued item is not a new offer
    stream.publish(audio(2))
    await asyncio.wait_for(task, 1)
    assert drain(reader) == [audio(1), audio(2)]


async def test_offered_ignores_frames_before_due_but_not_markers() -> None:
    stream = Stream("s")
    reader = stream.reader("r")
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(reader.offered(loop.time() + 0.05, 5.0))
    await asyncio.sleep(0)
    stream.publish(audio(1))  # before due: the consumer sleeps on
    await asyncio.sleep(0)
    assert not task.done()
    await asyncio.sleep(0.06)
    stream.publish(audio(2))  # the first frame once due wakes it
    await asyncio.wait_for(task, 1)
    task = asyncio.create_task(reader.offered(loop.time() + 5.0, 5.0))
    await asyncio.sleep(0)
    stream.end("publisher left")  # a marker wakes it whenever it comes
    await asyncio.wait_for(task, 1)


async def test_offered_returns_after_its_timeout_and_at_the_end() -> None:
    stream = Stream("s")
    reader = stream.reader("r")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(reader.offered(0.0, 0.02), 1)
    assert loop.time() - started >= 0.015
    stream.publish(audio(1))  # the timed-out wait left no waiter behind
    task = asyncio.create_task(reader.offered(0.0, 5.0))
    await asyncio.sleep(0)
    stream.end("publisher left")
    await asyncio.wait_for(task, 1)


async def test_close_wakes_waiter_and_detaches() -> None:
    stream = Stream("s")
    reader = stream.reader("r")
    task = asyncio.create_task(reader.next())
    await asyncio.sleep(0)
    reader.close()
    assert await asyncio.wait_for(task, 1) == EndOfStream("reader closed")
    assert stream.readers == ()
    stream.publish(audio(1))  # no reader left; must not fail
    assert reader.next_nowait() == EndOfStream("reader closed")


async def test_cancelled_waiter_leaves_reader_usable() -> None:
    stream = Stream("s")
    reader = stream.reader("r")
    task = asyncio.create_task(reader.next())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stream.publish(audio(1))
    assert await asyncio.wait_for(reader.next(), 1) == audio(1)


async def test_one_consumer_per_reader() -> None:
    reader = Stream("s").reader("r")
    first = asyncio.create_task(reader.next())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        await reader.next()
    first.cancel()


def test_reader_limits_validated() -> None:
    with pytest.raises(ValueError):
        Stream("s").reader("r", max_frames=4)
    with pytest.raises(ValueError):
        StreamLimits(reader_max_frames=1)


def test_stats_snapshot() -> None:
    stream = _configured()
    reader = stream.reader("hls-1", "hls")
    stream.publish(video(0, True, size=400))
    reader.next_nowait()
    stats = stream.stats()
    assert (stats.frames_published, stats.bytes_published, stats.gop_items) == (1, 400, 1)
    (rs,) = stats.readers
    assert (rs.name, rs.kind, rs.delivered_frames, rs.queued_items, rs.queued_bytes) == (
        "hls-1",
        "hls",
        0,
        2,
        400,
    )


def test_registry() -> None:
    registry = Registry()
    stream = registry.create("live/abc")
    assert registry.get("live/abc") is stream and "live/abc" in registry and len(registry) == 1
    with pytest.raises(StreamExistsError):
        registry.create("live/abc")
    reader = stream.reader("r")
    assert list(registry) == ["live/abc"] and registry.streams() == [stream]
    assert registry.remove("live/abc", reason="unpublished") is stream
    assert stream.ended and reader.next_nowait() == EndOfStream("unpublished")
    assert registry.get("live/abc") is None and registry.remove("live/abc") is None
    assert registry.create("live/abc") is not stream


def test_reconnect_inside_window_marks_discontinuity() -> None:
    registry = Registry()
    stream = registry.create("k")
    stream.set_config(VIDEO_CONFIG)
    stream.publish(video(0, True))
    reader = stream.reader("push")
    # publisher reconnects: ingest finds the live stream and marks the discontinuity
    again = registry.get("k")
    assert again is stream
    again.mark_discontinuity()
    again.set_config(VIDEO_CONFIG)  # identical resend: deduplicated
    again.publish(video(0, True))
    items = drain(reader)
    assert items == [ConfigChange(VIDEO_CONFIG), video(0, True), Discontinuity(), video(0, True)]
    assert isinstance(items[-1], Frame) and stream.stats().discontinuities == 1


def test_announced_tracks_go_in_band_and_to_late_joiners() -> None:
    both = frozenset({TrackKind.VIDEO, TrackKind.AUDIO})
    stream = Stream("s")
    early = stream.reader("early")
    assert stream.announce_tracks(both)
    assert not stream.announce_tracks(both)  # a PMT repeats: sent once
    stream.set_config(VIDEO_CONFIG)
    stream.publish(video(0, True))
    assert drain(early) == [TracksAnnounced(both), ConfigChange(VIDEO_CONFIG), video(0, True)]
    late = stream.reader("late")
    assert drain(late)[:2] == [TracksAnnounced(both), ConfigChange(VIDEO_CONFIG)]


async def test_offered_returns_at_once_for_a_closed_reader() -> None:
    reader = Stream("s").reader("r")
    reader.close()
    await asyncio.wait_for(reader.offered(0.0, 5.0), 0.5)
