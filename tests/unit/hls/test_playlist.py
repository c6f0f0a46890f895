"""Playlist rendering: tags and versions, delta updates, URI suffixes, dates, master."""

from __future__ import annotations

import dataclasses

import pytest

from server.hls.playlist import (
    LowLatency,
    MediaView,
    PartLine,
    SegmentLine,
    Variant,
    format_date_time,
    render_master,
    render_media,
    skipped_count,
    split_for_suffix,
    with_suffix,
)
from server.settings import HlsSettings
from tests.unit.media.avsource import media

from .helpers import T0, check_rules, feed, parse, shifted, start

LL = LowLatency(part_target=0.5, part_hold_back=1.5, hold_back=6.0, can_skip_until=12.0)


def segments(count: int, duration: float = 2.0, parts: bool = True) -> tuple[SegmentLine, ...]:
    lines = []
    for msn in range(10, 10 + count):
        part_lines = tuple(PartLine(i, duration / 4, i == 0) for i in range(4)) if parts else ()
        lines.append(SegmentLine(msn, duration, msn == 12, T0 + 2 * msn, 0, part_lines))
    return tuple(lines)


def view(**changes: object) -> MediaView:
    base = {
        "target_duration": 2,
        "media_sequence": 10,
        "discontinuity_sequence": 3,
        "segments": segments(10),
        "low_latency": LL,
        "preload_hint": (20, 0),
        "ended": False,
    }
    base.update(changes)
    return MediaView(**base)  # type: ignore[arg-type]


def test_ll_header_and_tags() -> None:
    text = render_media(view())
    lines = text.splitlines()
    assert lines[:7] == [
        "#EXTM3U",
        "#EXT-X-VERSION:9",
        "#EXT-X-TARGETDURATION:2",
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.5,HOLD-BACK=6,CAN-SKIP-UNTIL=12",
        "#EXT-X-PART-INF:PART-TARGET=0.5",
        "#EXT-X-MEDIA-SEQUENCE:10",
        "#EXT-X-DISCONTINUITY-SEQUENCE:3",
    ]
    assert lines[7] == '#EXT-X-MAP:URI="init0.mp4\x00"'
    assert lines[-1] == '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part20.0.m4s\x00"'
    assert text.count("#EXT-X-DISCONTINUITY\n") == 1
    assert '#EXT-X-PART:DURATION=0.500,URI="part10.0.m4s\x00",INDEPENDENT=YES' in lines


def test_versions_claim_only_what_is_used() -> None:
    assert "#EXT-X-VERSION:6" in render_media(view(low_latency=None))
    no_skip = LowLatency(0.5, 1.5, 6.0, None)
    assert "#EXT-X-VERSION:6" in render_media(view(low_latency=no_skip))
    assert "CAN-SKIP-UNTIL" not in render_media(view(low_latency=no_skip))
    plain = tuple(dataclasses.replace(s, init_version=None) for s in segments(3, parts=False))
    ts = render_media(view(low_latency=None, segments=plain))
    assert "#EXT-X-VERSION:3" in ts and "seg10.ts" in ts


def test_ended_playlist_has_no_hint() -> None:
    text = render_media(view(ended=True))
    assert text.endswith("#EXT-X-ENDLIST\n") and "PRELOAD-HINT" not in text


def test_delta_update_skips_only_beyond_the_skip_boundary() -> None:
    full = view()
    assert skipped_count(full) == 4  # 20 s listed; keep the segments within the last 12 s
    delta = with_suffix(split_for_suffix(render_media(full, skip=True)))
    p = parse(delta)
    assert p.skipped == 4 and "#EXT-X-SKIP:SKIPPED-SEGMENTS=4" in delta
    assert [s.msn for s in p.segments] == list(range(14, 20))
    assert p.segments[0].map_uri == "init0.mp4"  # the map is repeated for the first listed one
    assert p.media_sequence == 10 and p.discontinuity_sequence == 3
    assert skipped_count(view(low_latency=None)) == 0
    assert "EXT-X-SKIP" not in render_media(view(segments=segments(5)), skip=True)


def test_suffix_is_added_to_every_uri() -> None:
    pieces = split_for_suffix(render_media(view()))
    text = with_suffix(pieces, "?token=abc")
    uris = [line for line in text.splitlines() if not line.startswith("#")]
    assert uris and all(u.endswith(".m4s?token=abc") for u in uris)
    assert text.count("?token=abc") == text.count(".m4s") + text.count(".mp4")
    assert "\x00" not in text and "\x00" not in with_suffix(pieces)
    for bad in ('?t="x', "?t=\n", "\x00"):
        with pytest.raises(ValueError):
            with_suffix(pieces, bad)


def test_program_date_time_format() -> None:
    assert format_date_time(0) == "1970-01-01T00:00:00.000Z"
    assert format_date_time(1_700_000_000.1234) == "2023-11-14T22:13:20.123Z"
    assert format_date_time(1_700_000_000.9999) == "2023-11-14T22:13:20.999Z"


def test_master_playlist() -> None:
    text = render_master(
        [Variant(2_500_000, 2_000_000, "avc1.64001f,mp4a.40.2", (1280, 720), 29.97)]
    )
    assert text.splitlines() == [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        "#EXT-X-STREAM-INF:BANDWIDTH=2500000,AVERAGE-BANDWIDTH=2000000,"
        'CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720,FRAME-RATE=29.970',
        "media.m3u8\x00",
    ]
    audio = render_master([Variant(130_000, None, "mp4a.40.2", None, None)])
    assert "RESOLUTION" not in audio and "FRAME-RATE" not in audio


def test_segmenter_delta_update_with_a_long_window() -> None:
    m = media(seconds=8)
    settings = HlsSettings(window_segments=12)
    seg = start(m, window_segments=12)
    for n in range(2):  # 16 s of media: 8 segments, skip boundary 12 s
        feed(seg, shifted(m.frames, n * 720_000))
    full = check_rules(seg.media_playlist() or "", settings)
    delta = check_rules(seg.media_playlist(skip=True) or "", settings)
    assert "CAN-SKIP-UNTIL=12" in (seg.media_playlist() or "")
    assert delta.skipped >= 1
    assert [s.msn for s in delta.segments] == [s.msn for s in full.segments][delta.skipped :]
    assert seg.media_playlist(skip=True, suffix="?t=1") == with_suffix(
        split_for_suffix(render_media(seg.media_view() or view(), skip=True)), "?t=1"
    )
