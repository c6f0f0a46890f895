from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.media import aac
from server.media.errors import MediaFormatError
from server.media.flv import parse_audio_tag
from server.media.frame import CodecConfig, TrackKind

from .vectors import encode_audio, encode_flv, iter_flv_tags


def test_captured_flv_header_lc_44k_mono() -> None:
    config = parse_audio_tag(bytes.fromhex("af001208"), 0)
    assert isinstance(config, CodecConfig)
    assert (config.track, config.codec, config.profile) == (TrackKind.AUDIO, "aac", 2)
    assert (config.sample_rate, config.channels) == (44100, 1)
    assert config.extradata == bytes.fromhex("1208")


@pytest.mark.parametrize(
    ("asc", "object_type", "rate", "channels", "frame_length"),
    [
        ("1210", 2, 44100, 2, 1024),
        ("1190", 2, 48000, 2, 1024),
        ("1194", 2, 48000, 2, 960),  # frameLengthFlag
        ("1388", 2, 22050, 1, 1024),
        ("17805dc010", 2, 48000, 2, 1024),  # explicit 48000 Hz
        ("2b118800", 5, 24000, 2, 1024),  # HE-AAC: core 24 kHz, SBR 48 kHz
    ],
)
def test_parse_asc(asc: str, object_type: int, rate: int, channels: int, frame_length: int) -> None:
    parsed = aac.parse_asc(bytes.fromhex(asc))
    assert parsed.object_type == object_type
    assert parsed.sample_rate == rate
    assert parsed.channels == channels
    assert parsed.frame_length == frame_length


def test_he_aac_config_reports_output_rate() -> None:
    parsed = aac.parse_asc(bytes.fromhex("2b118800"))
    assert (parsed.core_object_type, parsed.extension_sample_rate) == (2, 48000)
    config = aac.config_from_asc(bytes.fromhex("2b118800"))
    assert (config.sample_rate, config.profile) == (48000, 5)


@pytest.mark.parametrize(("rate", "layout", "channels"), [(44100, "mono", 1), (48000, "stereo", 2)])
def test_asc_from_ffmpeg_flv(rate: int, layout: str, channels: int) -> None:
    data = encode_flv(None, acodec="aac", channels=layout)
    body = next(b for t, _, b in iter_flv_tags(data) if t == 8)
    parsed = aac.parse_asc(body[2:])
    assert (parsed.object_type, parsed.sample_rate, parsed.channels) == (2, 44100, channels)


@pytest.mark.parametrize(("rate", "layout", "cc"), [(44100, "mono", 1), (48000, "stereo", 2)])
def test_adts_from_ffmpeg(rate: int, layout: str, cc: int) -> None:
    data = encode_audio("aac", "adts", rate, layout)
    frames = list(aac.iter_adts(data))
    assert len(frames) >= 5
    for header, payload in frames:
        assert (header.object_type, header.sample_rate, header.channel_config) == (2, rate, cc)
        assert len(payload) == header.payload_size
        asc = aac.parse_asc(aac.asc_from_adts(header))
        rebuilt = aac.build_adts_header(asc, len(payload))
        assert aac.parse_adts_header(rebuilt) == header


def test_build_asc_round_trip() -> None:
    for rate in (*aac.SAMPLE_RATES, 50000):
        for cc in (1, 2, 6):
            parsed = aac.parse_asc(aac.build_asc(2, rate, cc))
            assert (parsed.object_type, parsed.sample_rate, parsed.channel_config) == (2, rate, cc)


def test_adts_refuses_what_it_cannot_describe() -> None:
    with pytest.raises(MediaFormatError):
        aac.build_adts_header(aac.parse_asc(aac.build_asc(2, 50000, 2)), 10)  # explicit rate
    with pytest.raises(MediaFormatError):
        aac.build_adts_header(aac.parse_asc(aac.build_asc(2, 48000, 0)), 10)  # PCE
    with pytest.raises(MediaFormatError):
        aac.build_adts_header(aac.parse_asc(bytes.fromhex("1210")), 9000)


@pytest.mark.parametrize("bad", ["", "12", "0008", "1788", "fff1"])
def test_malformed_asc(bad: str) -> None:
    with pytest.raises(MediaFormatError):
        aac.parse_asc(bytes.fromhex(bad))


@given(st.binary(max_size=16))
def test_asc_fuzz_only_format_errors(data: bytes) -> None:
    with contextlib.suppress(MediaFormatError):
        aac.parse_asc(data)


@given(st.binary(max_size=64))
def test_adts_fuzz_only_format_errors(data: bytes) -> None:
    with contextlib.suppress(MediaFormatError):
        list(aac.iter_adts(b"\xff\xf1" + data))
