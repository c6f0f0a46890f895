"""Ladder selection: the rungs a source can fill, sized to its aspect ratio."""

from __future__ import annotations

from fractions import Fraction

import pytest
from pydantic import ValidationError

from server.settings import Rung, TranscodeSettings
from server.transcode.ladder import ladder_for, output_fps, rung_names, select

LADDERS = TranscodeSettings().ladders


def _names(quality: str, width: int, height: int) -> list[str]:
    return [r.name for r in select(ladder_for(LADDERS, quality), width, height, 30.0)]


def test_documented_default_ladders() -> None:
    standard = {r.name: r.video_bitrate for r in LADDERS["standard"]}
    high = {r.name: r.video_bitrate for r in LADDERS["high"]}
    assert standard == {"720p": 3_000_000, "480p": 1_200_000, "360p": 800_000}
    assert high == {"1080p": 5_000_000, "720p": 3_000_000, "480p": 1_200_000}


def test_standard_from_720p_source_gets_the_whole_ladder() -> None:
    renditions = select(LADDERS["standard"], 1280, 720, 30.0)
    assert [(r.name, r.width, r.height) for r in renditions] == [
        ("720p", 1280, 720),
        ("480p", 854, 480),
        ("360p", 640, 360),
    ]
    assert all(r.fps == 30 for r in renditions)


def test_no_rung_taller_than_the_source() -> None:
    assert _names("high", 640, 360) == []
    assert _names("high", 1280, 720) == ["720p", "480p"]
    assert _names("standard", 854, 480) == ["480p", "360p"]


def test_passthrough_and_unknown_size_have_no_renditions() -> None:
    assert _names("passthrough", 1920, 1080) == []
    assert select(LADDERS["standard"], 0, 0, 30.0) == []


def test_widths_follow_the_aspect_ratio_and_are_even() -> None:
    portrait = select(LADDERS["standard"], 1080, 1920, 30.0)
    assert [(r.width, r.height) for r in portrait] == [(404, 720), (270, 480), (202, 360)]
    assert all(r.width % 2 == 0 for r in select(LADDERS["standard"], 1279, 719, None))


def test_frame_rate_is_halved_to_fit_the_rung() -> None:
    assert output_fps(60.0, 30.0) == 30
    assert output_fps(30.0, 60.0) == 30
    assert output_fps(30000 / 1001, 30.0) == Fraction(30000, 1001)
    assert output_fps(59.94, 30.0) == Fraction(2997, 100)
    assert output_fps(None, 30.0) is None


def test_rung_names() -> None:
    assert rung_names(LADDERS) == {"1080p", "720p", "480p", "360p"}


def test_ladder_validation() -> None:
    rung = Rung(name="720p", height=720, video_bitrate=3_000_000)
    with pytest.raises(ValidationError, match="unique"):
        TranscodeSettings(ladders={"standard": (rung, rung)})
    with pytest.raises(ValidationError, match="passthrough"):
        TranscodeSettings(ladders={"passthrough": (rung,)})


def test_max_streams_defaults_to_the_cores() -> None:
    assert TranscodeSettings().streams_limit() >= 1
    assert TranscodeSettings(max_streams=0).streams_limit() == 0
