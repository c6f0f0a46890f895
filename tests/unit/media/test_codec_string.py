from __future__ import annotations

import pytest

from server.media import aac, opus
from server.media.codec_string import codecs_attribute, rfc6381_codec
from server.media.frame import (
    TIMEBASE,
    CodecConfig,
    Frame,
    TrackKind,
    ms_to_ticks,
    ticks_to_ms,
)

from .test_flv import _x264_record


def test_avc1_string_from_record() -> None:
    config = CodecConfig(TrackKind.VIDEO, "h264", _x264_record())
    assert rfc6381_codec(config) == "avc1.42c01e"


def test_audio_strings() -> None:
    assert rfc6381_codec(aac.config_from_asc(bytes.fromhex("1208"))) == "mp4a.40.2"
    assert rfc6381_codec(aac.config_from_asc(bytes.fromhex("2b118800"))) == "mp4a.40.5"
    head = opus.build_opus_head(opus.OpusHeader(2, 312, coupled_count=1))
    assert rfc6381_codec(opus.config_from_opus_head(head)) == "opus"


def test_codecs_attribute_skips_missing_tracks() -> None:
    video = CodecConfig(TrackKind.VIDEO, "h264", _x264_record())
    audio = aac.config_from_asc(bytes.fromhex("1190"))
    assert codecs_attribute(video, audio) == "avc1.42c01e,mp4a.40.2"
    assert codecs_attribute(None, audio) == "mp4a.40.2"


def test_unknown_codec() -> None:
    with pytest.raises(ValueError):
        rfc6381_codec(CodecConfig(TrackKind.VIDEO, "vp8", b""))


def test_timebase_helpers() -> None:
    assert TIMEBASE == 90_000
    assert ms_to_ticks(40) == 3600 and ticks_to_ms(3689) == 40
    frame = Frame(TrackKind.VIDEO, "h264", 3600, 9000, True, b"")
    assert frame.cts == 5400
    with pytest.raises(AttributeError):
        frame.dts = 1  # type: ignore[misc]
