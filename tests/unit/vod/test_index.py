"""Cut points of VOD segments from keyframe times (pure)."""

from __future__ import annotations

from server.hls.playlist import MediaView, SegmentLine, render_media
from server.vod.index import Keyframe, Span, cut, target_duration

S = 90_000


def _keys(*seconds: float, lag: int = 0) -> list[Keyframe]:
    return [Keyframe(round(s * S) - lag, round(s * S)) for s in seconds]


def test_cuts_at_each_keyframe_once_target_long() -> None:
    spans = cut(_keys(0, 1, 2, 3, 4, 5), 6 * S, 6 * S, 2.0)
    assert [(s.pts, s.end_pts) for s in spans] == [(0, 2 * S), (2 * S, 4 * S), (4 * S, 6 * S)]
    assert sum(s.seconds for s in spans) == 6.0


def test_sparse_keyframes_make_longer_segments_and_raise_target_duration() -> None:
    spans = cut(_keys(0, 5, 6), 9 * S, 9 * S, 2.0)
    assert [s.seconds for s in spans] == [5.0, 4.0]
    assert target_duration(spans, 2.0) == 5


def test_decode_times_partition_video_and_presentation_times_the_rest() -> None:
    spans = cut(_keys(0, 2, lag=3600), 4 * S - 3600, 4 * S, 2.0)
    assert spans == [
        Span(-3600, 2 * S - 3600, 0, 2 * S),
        Span(2 * S - 3600, 4 * S - 3600, 2 * S, 4 * S),
    ]


def test_no_keyframe_no_segment() -> None:
    assert cut([], S, S, 2.0) == []


def test_target_duration_covers_rounded_extinf() -> None:
    assert target_duration([Span(0, 0, 0, round(2.4 * S))], 2.0) == 2
    assert target_duration([Span(0, 0, 0, round(2.5 * S))], 2.0) == 3


def test_vod_playlist_type_is_rendered() -> None:
    view = MediaView(
        target_duration=2,
        media_sequence=0,
        discontinuity_sequence=0,
        segments=(SegmentLine(0, 2.0, False, None, 0),),
        low_latency=None,
        preload_hint=None,
        ended=True,
        playlist_type="VOD",
    )
    text = render_media(view)
    assert "#EXT-X-PLAYLIST-TYPE:VOD\n" in text and text.endswith("#EXT-X-ENDLIST\n")
