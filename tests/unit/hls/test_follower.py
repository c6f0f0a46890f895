"""A rendition's segmenter follows the source's: same cuts, MSNs, PTS and date-times."""

from __future__ import annotations

import io

import av
import pytest

from server.bus.items import ConfigChange
from server.hls import Segmenter
from server.media.frame import TIMEBASE, Frame, TrackKind
from server.settings import HlsSettings
from tests.unit.hls.helpers import T0, parse
from tests.unit.media.avsource import media

SETTINGS = HlsSettings(target_duration=2.0, part_target=0.5)


def _segmenter(config_source: object, leader: Segmenter | None = None) -> Segmenter:
    seg = Segmenter(SETTINGS, first_sequence=100, leader=leader)
    for config in config_source.configs:  # type: ignore[attr-defined]
        seg.feed(ConfigChange(config), T0)
    return seg


def _feed(seg: Segmenter, frames: list[Frame], wall: float) -> None:
    for frame in frames:
        seg.feed(frame, wall + frame.dts / TIMEBASE)


def _video(bframes: int) -> tuple[object, list[Frame]]:
    m = media(audio=False, seconds=8, gop=30, bframes=bframes)
    return m, [f for f in m.frames if f.track is TrackKind.VIDEO]


def _starts(seg: Segmenter) -> dict[int, tuple[float, str | None]]:
    text = seg.media_playlist()
    assert text is not None
    return {s.msn: (s.duration or 0.0, s.date_time) for s in parse(text).complete}


def test_a_late_rendition_starts_at_a_source_cut_with_its_number_and_date() -> None:
    source_media, source = _video(bframes=2)  # dts < pts, as from ffmpeg
    rung_media, rung = _video(bframes=0)  # the encoder's output: dts == pts
    leader = _segmenter(source_media)
    _feed(leader, source, T0)
    follower = _segmenter(rung_media, leader)
    late = [f for f in rung if f.pts >= 0.5 * TIMEBASE]  # joins mid-GOP, 3 s later
    _feed(follower, late, T0 + 3)
    theirs, ours = _starts(leader), _starts(follower)
    assert ours, "the rendition produced segments"
    assert min(ours) == 101  # the source's second segment (first cut after 0.5 s)
    for msn, line in ours.items():
        assert line == theirs[msn]


def test_segment_start_times_align_on_presentation_time() -> None:
    source_media, source = _video(bframes=2)
    rung_media, rung = _video(bframes=0)
    leader = _segmenter(source_media)
    _feed(leader, source, T0)
    follower = _segmenter(rung_media, leader)
    _feed(follower, rung, T0 + 1)
    lead_cuts = {c.msn: c.pts + c.offset for c in leader._cuts}
    follow_cuts = {c.msn: c.pts + c.offset for c in follower._cuts}
    assert follow_cuts == {m: t for m, t in lead_cuts.items() if m in follow_cuts}
    assert len(follow_cuts) >= 3


def test_a_rendition_that_lost_pictures_but_no_keyframe_keeps_the_source_numbers() -> None:
    """What the transcoder sends a worker that is behind: keyframes only for a while.
    The rendition's segments after the hole still have the source's numbers at the same
    presentation times (a rendition a segment off would make players switching by
    number skip or repeat media)."""
    source_media, source = _video(bframes=2)
    rung_media, rung = _video(bframes=0)
    leader = _segmenter(source_media)
    _feed(leader, source, T0)
    follower = _segmenter(rung_media, leader)
    hole = (int(3.2 * TIMEBASE), int(4.9 * TIMEBASE))  # across the source's cut at 4 s
    kept = [f for f in rung if f.keyframe or not hole[0] <= f.pts < hole[1]]
    _feed(follower, kept, T0 + 1)
    lead_cuts = {c.msn: c.pts + c.offset for c in leader._cuts}
    follow_cuts = {c.msn: c.pts + c.offset for c in follower._cuts}
    assert max(follow_cuts) == max(lead_cuts) and len(follow_cuts) >= 4
    assert follow_cuts == {m: t for m, t in lead_cuts.items() if m in follow_cuts}


def _audio_by_segment(seg: Segmenter) -> dict[int, list[int]]:
    """Each complete segment's audio sample times, read back with PyAV."""
    init = seg.init_segment(seg._init_version) or b""
    text = seg.media_playlist()
    assert text is not None
    out = {}
    for s in parse(text).complete:
        with av.open(io.BytesIO(init + (seg.segment(s.msn) or b""))) as container:
            stream = container.streams.audio[0]
            out[s.msn] = [p.pts for p in container.demux(stream) if p.pts is not None]
    return out


def _arriving_early(frames: list[Frame], lead: int) -> list[Frame]:
    """Decode order, audio ``lead`` ticks ahead of the video it plays with."""
    key = {id(f): f.dts - (lead if f.track is TrackKind.AUDIO else 0) for f in frames}
    return sorted(frames, key=lambda f: key[id(f)])


@pytest.mark.parametrize("audio_lead", [0.0, 0.7])
def test_a_rendition_s_segments_carry_the_source_s_audio_frames(audio_lead: float) -> None:
    """The source (B-frames: a keyframe decodes before it shows) splits audio at the
    keyframe's decode time; the rendition (no B-frames) gets the same audio frames in
    each numbered segment whatever order its encoder interleaved them in, so a player
    switching renditions between segments meets no gap or overlap in the audio."""
    source = media(audio=True, seconds=8, gop=30, bframes=2)
    rung = media(audio=True, seconds=8, gop=30, bframes=0)
    leader = _segmenter(source)
    _feed(leader, list(source.frames), T0)
    follower = _segmenter(rung, leader)
    _feed(follower, _arriving_early(list(rung.frames), int(audio_lead * TIMEBASE)), T0 + 1)
    theirs, ours = _audio_by_segment(leader), _audio_by_segment(follower)
    # from the rendition's second segment: audio that came before its first keyframe
    # had no segment to go in
    shared = sorted(set(theirs) & set(ours))[1:]
    assert len(shared) >= 2
    for msn in shared:
        assert ours[msn] == theirs[msn], msn
