"""Segmenter: cutting rules, numbering, discontinuities, storage bounds, parts in progress."""

from __future__ import annotations

import dataclasses

import pytest

from server.bus.items import BusItem, ConfigChange, Discontinuity, EndOfStream, TracksAnnounced
from server.hls import Change, Segmenter
from server.hls.blocking import Directives, Edge, Outcome
from server.media.frame import Codec, TrackKind
from server.settings import HlsSettings
from tests.unit.media.avsource import Media, has_encoder, media

from .helpers import T0, check_rules, feed, parse, shifted, start

VIDEO = TrackKind.VIDEO


def test_ll_rules_hold_on_every_playlist_version() -> None:
    m = media(seconds=8)
    settings = HlsSettings(window_segments=3)
    seg = start(m, window_segments=3)
    versions = feed(seg, m.frames) + feed(seg, shifted(m.frames, 8 * 90_000))
    assert len(versions) >= 30  # one per part (0.5 s) of 16 s
    previous = None
    for text in versions:
        p = check_rules(text, settings)
        assert p.preload_hint is not None and not p.ended
        if previous is not None:
            assert p.media_sequence >= previous.media_sequence
            assert p.discontinuity_sequence >= previous.discontinuity_sequence
            before = {s.msn: s.duration for s in previous.complete}
            for s in p.complete:  # a published segment never changes
                assert before.get(s.msn, s.duration) == s.duration
        previous = p
    final = parse(versions[-1])
    assert len(final.complete) == 3 and final.media_sequence > 0  # the window slid


def test_segments_and_parts_follow_keyframes() -> None:
    m = media(seconds=8)  # GOP 30 frames = 1 s, parts of 15 frames
    seg = start(m, window_segments=10)
    feed(seg, m.frames)
    seg.on_end()
    p = check_rules(seg.media_playlist() or "", HlsSettings(window_segments=10))
    assert p.ended and p.preload_hint is None
    assert [s.duration for s in p.complete[:-1]] == [2.0] * (len(p.complete) - 1)
    listed = [s for s in p.complete if s.parts]
    assert [s.msn for s in listed] == [1, 2, 3]  # parts only for the last 3 target durations
    for s in listed[:-1]:
        assert [x.duration for x in s.parts] == [0.5] * 4
        assert [x.independent for x in s.parts] == [True, False, True, False]
    assert p.complete[0].map_uri == "init0.mp4"
    assert all(s.map_uri is None for s in p.complete[1:])
    assert all(s.date_time for s in p.complete)


def test_a_gop_that_does_not_fit_the_parts_leaves_no_short_part_before_a_keyframe() -> None:
    """A keyframe every 25 frames at 30 fps falls 10 frames into a part: that part goes
    on to the part target with the keyframe inside it (not INDEPENDENT) instead of
    closing at 0.33 s, a part hls.js was seen to skip a whole GOP after when switching."""
    m = media(seconds=8, gop=25)
    seg = start(m, window_segments=10)
    feed(seg, m.frames)
    seg.on_end()
    p = check_rules(seg.media_playlist() or "", HlsSettings(window_segments=10))
    listed = [s for s in p.complete if s.parts][:-1]
    assert listed
    for s in listed:  # keyframes at 0, 0.83 and 1.67 s: segments cut at the third
        assert [round(x.duration, 3) for x in s.parts] == [0.5, 0.5, 0.5, 0.167]
        assert [x.independent for x in s.parts] == [True, False, False, False]


def test_segment_bytes_are_the_parts_concatenated() -> None:
    m = media()
    seg = start(m, window_segments=10)
    feed(seg, m.frames)
    for msn in range(seg.edge().last_msn + 1):
        parts = []
        index = 0
        while (buffer := seg.part(msn, index)) is not None:
            assert buffer.complete
            parts.append(bytes(buffer.data))
            index += 1
        assert b"".join(parts) == seg.segment(msn)
    assert seg.part(0, 99) is None and seg.segment(99) is None


def test_window_slides_and_storage_stays_bounded() -> None:
    m = media(seconds=8)
    seg = start(m, window_segments=3)
    feed(seg, m.frames)
    seg.on_end()
    p = parse(seg.media_playlist() or "")
    last = seg.edge().last_msn
    assert [s.msn for s in p.segments] == [last - 2, last - 1, last]
    assert p.media_sequence == last - 2
    stored = [msn for msn in range(last + 1) if seg.segment(msn) is not None]
    assert stored == list(range(max(0, last - 6), last + 1))  # window 3 + retained 3 + 1
    assert seg.init_segment(0) is not None


def test_discontinuity_marker_and_sequence() -> None:
    m = media()
    settings = HlsSettings(window_segments=3)
    seg = start(m, window_segments=3)
    feed(seg, m.frames)
    seg.feed(Discontinuity(), T0 + 5)
    versions = feed(seg, m.frames, t0=T0 + 100)  # the encoder restarted its clock
    p = check_rules(versions[-1], settings)
    marked = [s for s in p.segments if s.discontinuity]
    assert len(marked) == 1 and marked[0].msn == 2
    assert marked[0].date_time is not None and marked[0].date_time.startswith("2023-11-14T22:14:5")
    assert marked[0].map_uri is None  # same codecs: same init segment
    for n in (1, 2):  # push the discontinuous segment out of the window
        feed(seg, shifted(m.frames, 90_000 * 5 * n), t0=T0 + 100 + 5 * n)
    p = check_rules(seg.media_playlist() or "", settings)
    assert p.media_sequence > 2 and p.discontinuity_sequence == 1
    assert seg.stats().discontinuities == 1


def test_codec_change_starts_a_new_init_segment() -> None:
    m = media()
    seg = start(m, window_segments=10)
    feed(seg, m.frames)
    assert m.video is not None
    changed = dataclasses.replace(m.video, width=640, height=360)
    seg.feed(ConfigChange(changed), T0 + 5)
    feed(seg, shifted(m.frames, 90_000 * 4), t0=T0 + 4)
    p = parse(seg.media_playlist() or "")
    switch = next(s for s in p.segments if s.discontinuity)
    assert switch.map_uri == "init1.mp4"
    assert seg.init_segment(1) is not None and seg.init_segment(1) != seg.init_segment(0)
    assert b"avc1" in (seg.init_segment(1) or b"")


@pytest.mark.parametrize("jump", [-90_000 * 3, 90_000 * 30])
def test_timestamp_jump_is_a_discontinuity(jump: int) -> None:
    m = media()
    seg = start(m, window_segments=10)
    frames = list(m.frames)
    half = next(
        i for i, f in enumerate(frames) if f.dts > 90_000 * 2.5 and f.track is VIDEO and f.keyframe
    )
    feed(seg, frames[:half] + shifted(frames[half:], jump))
    p = check_rules(seg.media_playlist() or "", HlsSettings(window_segments=10))
    assert p.segments[1].duration == pytest.approx(1.0)  # closed early by the jump at 3 s
    assert [s.msn for s in p.segments if s.discontinuity] == [2]
    assert seg.stats().discontinuities == 1


def test_audio_only_is_cut_by_time() -> None:
    m = media(video=None, seconds=5)
    settings = HlsSettings(window_segments=10)
    seg = start(m, window_segments=10)
    feed(seg, m.frames)
    p = check_rules(seg.media_playlist() or "", settings)
    assert len(p.complete) == 2
    assert all(1.9 <= s.duration <= 2.0 for s in p.complete if s.duration)
    assert all(part.independent for s in p.segments for part in s.parts)
    assert seg.master_playlist() is not None and "RESOLUTION" not in (seg.master_playlist() or "")


def test_long_gop_is_cut_between_keyframes_at_the_cap() -> None:
    m = media(seconds=4, gop=90)  # 3 s GOP, 2 s target
    settings = HlsSettings(window_segments=10)
    seg = start(m, window_segments=10)
    feed(seg, m.frames)
    p = check_rules(seg.media_playlist() or "", settings, cap=1.1)
    assert [s.duration for s in p.complete] == [2.2, 0.8]  # cut at the cap, then at the key
    assert [s.parts[0].independent for s in p.complete] == [True, False]


def test_slightly_late_keyframe_is_waited_for() -> None:
    m = media(seconds=4, gop=61)  # keyframes every 2.033 s
    seg = start(m, window_segments=10)
    feed(seg, m.frames)
    p = check_rules(seg.media_playlist() or "", HlsSettings(window_segments=10), cap=1.1)
    assert p.complete[0].duration == pytest.approx(2.033, abs=0.001)
    assert all(s.parts[0].independent for s in p.segments)


def test_millisecond_timestamps_still_give_full_parts() -> None:
    m = media()
    rounded = [  # what RTMP delivers: whole milliseconds
        dataclasses.replace(f, dts=(f.dts * 1000 // 90_000) * 90, pts=(f.pts * 1000 // 90_000) * 90)
        for f in m.frames
    ]
    assert rounded[3].dts - rounded[2].dts != rounded[2].dts - rounded[1].dts  # 33/34 ms
    settings = HlsSettings(window_segments=10)
    seg = start(m, window_segments=10)
    feed(seg, rounded)
    p = check_rules(seg.media_playlist() or "", settings)
    full = [x.duration for s in p.complete for x in s.parts]
    assert full.count(0.5) == len(full)


def test_chunked_parts_grow_while_being_written() -> None:
    m = media()
    changes: list[Change] = []
    seg = Segmenter(HlsSettings(chunked_parts=True), on_change=changes.append)
    for config in m.configs:
        seg.on_config(config)
    video_seen = 0
    sizes = []
    for frame in m.frames:
        seg.on_frame(frame, T0)
        if frame.track is VIDEO:
            video_seen += 1
            if video_seen in (5, 6, 7):
                hint = seg.preload_hint
                assert hint is not None
                buffer = seg.part(*hint)
                assert buffer is not None and not buffer.complete
                sizes.append(buffer.size)
    assert sizes[0] < sizes[1] < sizes[2]  # one more frame flushed each time
    assert Change.DATA in changes and Change.PLAYLIST in changes
    first = seg.part(0, 0)
    assert first is not None and first.complete
    assert bytes(first.data).count(b"moof") == 15  # one chunk per video frame


def test_preload_hint_points_at_the_part_being_written() -> None:
    m = media()
    seg = start(m, chunked_parts=False)  # the part's bytes come only when it closes
    assert seg.media_playlist() is None and seg.master_playlist() is None
    frames = list(m.frames)
    feed(seg, frames[:200])  # about 2.6 s: one segment and a part done
    hint = seg.preload_hint
    assert hint is not None
    p = parse(seg.media_playlist() or "")
    assert p.preload_hint == f"part{hint[0]}.{hint[1]}.m4s"
    current = seg.part(*hint)
    assert current is not None and not current.complete and current.size == 0
    edge = seg.edge()
    assert edge == Edge(last_msn=hint[0] - 1, last_segment_parts=4, last_part=hint[1] - 1)
    feed(seg, frames[200:])
    assert current.complete and current.size > 0


def test_frames_without_config_or_before_a_keyframe_are_dropped() -> None:
    m = media()
    seg = Segmenter(HlsSettings())
    seg.on_frame(m.frames[0], T0)
    assert seg.stats().dropped_frames == 1
    for config in m.configs:
        seg.on_config(config)
    video = [f for f in m.frames if f.track is VIDEO]
    seg.on_frame(video[1], T0)  # not a keyframe: cannot start a segment
    assert seg.stats().dropped_frames == 2 and seg.preload_hint == (0, 0)
    seg.on_frame(dataclasses.replace(video[0], codec=Codec.H265), T0)
    assert seg.stats().dropped_frames == 3


def test_end_of_stream_closes_and_ignores_the_rest() -> None:
    m = media()
    seg = start(m)
    feed(seg, m.frames)
    seg.feed(EndOfStream("publisher left"), T0 + 5)
    text = seg.media_playlist() or ""
    assert text.endswith("#EXT-X-ENDLIST\n") and "PRELOAD-HINT" not in text
    seg.on_frame(m.frames[-1], T0 + 6)
    assert seg.media_playlist() == text and seg.edge().ended


def test_ts_format_has_no_parts() -> None:
    m = media()
    settings = HlsSettings(segment_format="ts", window_segments=10)
    seg = start(m, segment_format="ts", window_segments=10)
    feed(seg, m.frames)
    text = seg.media_playlist() or ""
    p = check_rules(text, settings)
    assert "#EXT-X-VERSION:3" in text and "EXT-X-PART" not in text and "EXT-X-MAP" not in text
    assert p.complete[0].uri == "seg0.ts" and seg.part_target is None and not seg.low_latency
    assert (seg.segment(0) or b"")[:1] == b"\x47"
    assert seg.segment(0, "ts") == seg.segment(0) and seg.segment(0, "m4s") is None


def test_non_ll_fmp4_has_one_fragment_per_segment() -> None:
    m = media()
    seg = start(m, low_latency=False)
    feed(seg, m.frames)
    text = seg.media_playlist() or ""
    assert "EXT-X-PART" not in text and "SERVER-CONTROL" not in text and "#EXT-X-VERSION:6" in text
    assert (seg.segment(0) or b"").count(b"moof") == 1


@pytest.mark.skipif(not has_encoder("libx265"), reason="libx265 not in this FFmpeg build")
def test_hevc_is_always_fmp4() -> None:
    m: Media = media(video="libx265", seconds=3)
    seg = start(m, segment_format="ts")
    feed(seg, m.frames)
    text = seg.media_playlist() or ""
    assert "seg0.m4s" in text and "EXT-X-PART" in text
    master = seg.master_playlist() or ""
    assert 'CODECS="hvc1.' in master and "RESOLUTION=320x180" in master


def test_master_playlist_describes_the_real_stream() -> None:
    m = media()
    seg = start(m)
    feed(seg, m.frames)
    master = seg.master_playlist("?token=abc") or ""
    lines = master.splitlines()
    assert lines[-1] == "media.m3u8?token=abc"
    info = lines[-2]
    assert 'CODECS="avc1.64000d,mp4a.40.2"' in info
    assert "RESOLUTION=320x180" in info and "FRAME-RATE=30.000" in info
    bandwidth = int(info.split("BANDWIDTH=")[1].split(",")[0])
    average = int(info.split("AVERAGE-BANDWIDTH=")[1].split(",")[0])
    total = sum(len(seg.segment(n) or b"") for n in range(seg.edge().last_msn + 1))
    assert bandwidth >= average > 0
    assert average == pytest.approx(total * 8 / (2.0 * (seg.edge().last_msn + 1)), rel=0.01)


def test_unusable_configs_drop_frames_instead_of_failing() -> None:
    m = media()
    assert m.video is not None and m.audio is not None
    seg = Segmenter(HlsSettings())
    seg.on_config(dataclasses.replace(m.video, extradata=b"\x01\x64"))  # truncated avcC
    seg.on_frame(m.track(VIDEO)[0], T0)
    assert seg.stats().dropped_frames == 1 and seg.media_playlist() is None
    seg.on_config(m.video)  # a good record arrives: packaging starts
    feed(seg, m.frames)
    assert seg.edge().last_msn >= 0


def test_aac_that_adts_cannot_describe_goes_to_fmp4() -> None:
    m = media(video=None)
    assert m.audio is not None
    pce = dataclasses.replace(m.audio, extradata=bytes((0x11, 0x80)))  # channelConfiguration 0
    seg = Segmenter(HlsSettings(segment_format="ts"))
    seg.on_config(pce)
    feed(seg, m.frames)
    assert "seg0.m4s" in (seg.media_playlist() or "")


def test_first_sequence_names_every_uri_uniquely() -> None:
    """Sessions start numbering at distinct values so URIs never repeat across sessions."""
    m = media(seconds=4)
    seg = Segmenter(HlsSettings(), low_latency=True, first_sequence=1_800_000_000)
    for config in m.configs:
        seg.feed(ConfigChange(config), T0)
    feed(seg, m.frames)
    text = seg.media_playlist() or ""
    assert "#EXT-X-MEDIA-SEQUENCE:1800000000" in text
    assert 'URI="init1800000000.mp4"' in text and "seg1800000000.m4s" in text
    assert "#EXT-X-DISCONTINUITY\n" not in text
    assert seg.segment(1_800_000_000, "m4s") is not None


def test_blocking_reload_for_the_first_segment_waits_instead_of_400() -> None:
    """Numbering starts at ``first_sequence``: before any segment closes, asking for the
    next part of the first segment must wait for it, not count as far ahead."""
    m = media(seconds=4)
    seg = Segmenter(HlsSettings(), low_latency=True, first_sequence=1_800_000_000)
    for config in m.configs:
        seg.feed(ConfigChange(config), T0)
    frames = list(m.frames)
    feed(seg, frames[:60])  # under a second: a part done, the segment still open
    assert seg.edge() == Edge(last_msn=1_799_999_999, last_part=0)
    reload = seg.blocking_reload(Directives(msn=1_800_000_000, part=1), 0.0)
    assert reload.decide(seg.edge(), 0.1).outcome is Outcome.WAIT
    feed(seg, frames[60:])
    assert reload.decide(seg.edge(), 0.2).outcome is Outcome.READY


def test_chunks_are_flushed_only_while_someone_streams_the_part() -> None:
    """Per-frame chunks cost CPU: with nobody receiving the part being written, a part is
    one moof+mdat and no DATA change is reported; once a streamer appears, the frames so
    far go out as one chunk and every later frame as its own."""
    m = media()
    changes: list[Change] = []
    streaming = [False]
    seg = Segmenter(
        HlsSettings(chunked_parts=True), on_change=changes.append, streaming=lambda: streaming[0]
    )
    for config in m.configs:
        seg.on_config(config)
    video_seen = 0
    for frame in m.frames:
        seg.on_frame(frame, T0)
        video_seen += frame.track is VIDEO
        if video_seen == 20:  # part 0.1 (frames 16-30) is being written
            streaming[0] = True
        if video_seen == 31:
            streaming[0] = False
    quiet, streamed = seg.part(0, 0), seg.part(0, 1)
    assert quiet is not None and streamed is not None
    assert bytes(quiet.data).count(b"moof") == 1
    assert bytes(streamed.data).count(b"moof") == 11  # frames 16-20 at once, then 21-30
    assert changes.count(Change.DATA) == 10
    later = seg.part(0, 2)
    assert later is not None and bytes(later.data).count(b"moof") == 1


# ------------------------------------------------------------------ announced tracks

BOTH = frozenset({TrackKind.VIDEO, TrackKind.AUDIO})


def _audio_late(m: Media, delay: int) -> list[BusItem]:
    """What an MPEG-TS source gives: the PMT, video from its first keyframe, and the
    audio configuration with the first ADTS frame ``delay`` ticks later."""
    assert m.video is not None and m.audio is not None
    first = m.frames[0].dts
    items: list[BusItem] = [TracksAnnounced(BOTH), ConfigChange(m.video)]
    audio_started = False
    for frame in m.frames:
        if frame.track is TrackKind.AUDIO:
            if frame.dts - first < delay:
                continue
            if not audio_started:
                items.append(ConfigChange(m.audio))
                audio_started = True
        items.append(frame)
    return items


def _tracks_of_init(seg: Segmenter, version: int) -> set[bytes]:
    init = seg.init_segment(version) or b""
    return {codec for codec in (b"avc1", b"mp4a") if codec in init}


def test_first_init_waits_for_an_announced_track_that_comes_late() -> None:
    m = media()
    seg = Segmenter(HlsSettings(window_segments=10))
    feed(seg, _audio_late(m, 30_000))  # audio 1/3 s after the first keyframe
    p = check_rules(seg.media_playlist() or "", seg.settings)
    assert not any(s.discontinuity for s in p.segments)
    assert [s.map_uri for s in p.segments if s.map_uri] == ["init0.mp4"]
    assert _tracks_of_init(seg, 0) == {b"avc1", b"mp4a"}
    assert seg.stats().discontinuities == 0
    video = m.track(VIDEO)
    assert p.segments[0].duration == pytest.approx((video[60].dts - video[0].dts) / 90_000)


def test_the_wait_is_bounded_then_video_starts_alone() -> None:
    """A track announced but never configured: the first segment starts after
    ``track_wait`` of media, from the first keyframe, with what came."""
    m = media()
    assert m.video is not None
    seg = Segmenter(HlsSettings(track_wait=0.5))
    seg.feed(TracksAnnounced(BOTH), T0)
    seg.feed(ConfigChange(m.video), T0)
    video = m.track(VIDEO)
    first = video[0].dts
    waiting = [f for f in video if f.dts - first < 45_000]
    feed(seg, waiting)
    assert seg.part(0, 0) is None  # held: no segment opened yet
    feed(seg, video[len(waiting) : len(waiting) + 1])
    assert seg.part(0, 0) is not None and seg.stats().dropped_frames == 0
    assert _tracks_of_init(seg, 0) == {b"avc1"}
    feed(seg, video[len(waiting) + 1 :])
    p = parse(seg.media_playlist() or "")
    assert p.segments[0].duration == pytest.approx((video[60].dts - first) / 90_000)


@pytest.mark.parametrize("announced", [frozenset({TrackKind.VIDEO}), None])
def test_nothing_to_wait_for_starts_at_the_first_keyframe(
    announced: frozenset[TrackKind] | None,
) -> None:
    m = media(audio=False)
    assert m.video is not None
    seg = Segmenter(HlsSettings())
    if announced is not None:
        seg.feed(TracksAnnounced(announced), T0)
    seg.feed(ConfigChange(m.video), T0)
    feed(seg, m.frames[:1])
    assert seg.part(0, 0) is not None  # the first segment opened at once


def test_end_of_stream_while_waiting_publishes_the_held_frames() -> None:
    m = media()
    assert m.video is not None
    seg = Segmenter(HlsSettings())
    seg.feed(TracksAnnounced(BOTH), T0)
    seg.feed(ConfigChange(m.video), T0)
    feed(seg, m.track(VIDEO)[:10])
    seg.feed(EndOfStream(), T0 + 1)
    p = parse(seg.media_playlist() or "")
    assert len(p.segments) == 1 and p.ended
