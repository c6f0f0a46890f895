"""H.264 between RTP's Annex B access units and bus frames, both ways."""

from __future__ import annotations

import pytest

from server.media.errors import MediaFormatError
from server.media.frame import CodecConfig, Frame, TrackKind
from server.media.nal import START_CODE
from server.webrtc.h264 import AnnexBVideo, frame_to_annexb, parameter_sets_annexb
from tests.unit.media.avsource import encode_video

AUD = START_CODE + b"\x09\xf0"


def test_bus_frames_survive_the_round_trip_through_annex_b() -> None:
    config, frames = encode_video(seconds=2, gop=15, bframes=0)
    sets = parameter_sets_annexb(config)
    depacketizer = AnnexBVideo()
    configs: list[CodecConfig] = []
    out: list[Frame] = []
    for frame in frames:
        for item in depacketizer.access_unit(AUD + frame_to_annexb(frame, sets), frame.pts):
            (configs if isinstance(item, CodecConfig) else out).append(item)  # type: ignore[arg-type]
    assert configs == [config]  # once: the repeated SPS/PPS are the same
    assert [f.payload for f in out] == [f.payload for f in frames]  # AUD gone, sets gone
    assert [f.keyframe for f in out] == [f.keyframe for f in frames]
    assert sum(f.keyframe for f in out) == 4
    assert all(f.dts == f.pts == g.pts for f, g in zip(out, frames, strict=True))
    assert all(f.track is TrackKind.VIDEO for f in out)


def test_frames_before_the_first_parameter_sets_are_dropped() -> None:
    config, frames = encode_video(seconds=1, gop=15, bframes=0)
    sets = parameter_sets_annexb(config)
    depacketizer = AnnexBVideo()
    delta = frames[1]
    assert depacketizer.access_unit(frame_to_annexb(delta, b""), 0) == []
    items = depacketizer.access_unit(frame_to_annexb(frames[0], sets), 3000)
    assert [type(i) for i in items] == [CodecConfig, Frame]


def test_keyframes_carry_the_parameter_sets_and_other_frames_do_not() -> None:
    config, frames = encode_video(seconds=1, gop=15, bframes=0)
    sets = parameter_sets_annexb(config)
    assert frame_to_annexb(frames[0], sets).startswith(sets)
    assert not frame_to_annexb(frames[1], sets).startswith(sets)


def test_bytes_that_are_not_annex_b_raise_the_media_error() -> None:
    with pytest.raises(MediaFormatError):
        AnnexBVideo().access_unit(b"\x01\x02\x03\x04", 0)
