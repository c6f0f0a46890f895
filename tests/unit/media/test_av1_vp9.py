from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.media import av1, vp9
from server.media.codec_string import rfc6381_codec
from server.media.errors import MediaFormatError
from server.media.flv import parse_video_tag
from server.media.frame import CodecConfig, Frame

from .vectors import encode_flv, has_codec, iter_flv_tags, probe


def _video_tags(data: bytes) -> list[bytes]:
    return [b for t, _, b in iter_flv_tags(data) if t == 9]


@pytest.mark.skipif(not has_codec("libsvtav1"), reason="PyAV build without SVT-AV1")
def test_av1_from_ffmpeg_flv() -> None:
    data = encode_flv("libsvtav1", 320, 240, 3, None, (("preset", "12"),))
    tags = _video_tags(data)
    assert tags[0][:5] == b"\x90av01"
    config = parse_video_tag(tags[0], 0)
    assert isinstance(config, CodecConfig)
    assert (config.codec, config.width, config.height) == ("av1", 320, 240)
    info = probe(data)[0]
    assert (info["width"], info["height"]) == (320, 240)
    assert rfc6381_codec(config) == "av01.0.00M.08"
    frames = [parse_video_tag(t, 0) for t in tags[1:]]
    coded = [f for f in frames if isinstance(f, Frame)]
    assert coded[0].keyframe and not coded[1].keyframe
    assert {t for t, _ in av1.iter_obus(coded[0].payload)} >= {av1.OBU_TEMPORAL_DELIMITER}


@pytest.mark.skipif(not has_codec("libvpx-vp9"), reason="PyAV build without libvpx-vp9")
def test_vp9_from_ffmpeg_flv() -> None:
    options = (("deadline", "realtime"), ("cpu-used", "8"))
    tags = _video_tags(encode_flv("libvpx-vp9", 320, 240, 3, None, options))
    assert tags[0][:5] == b"\x90vp09"
    config = parse_video_tag(tags[0], 0)
    assert isinstance(config, CodecConfig)
    assert (config.codec, config.profile) == ("vp9", 0)
    assert rfc6381_codec(config).startswith("vp09.00.")
    assert vp9.parse_vpcc(tags[0][5:]) == vp9.parse_vpcc(
        vp9.build_vpcc(vp9.parse_vpcc(tags[0][5:]))
    )


@pytest.mark.skipif(not has_codec("libvpx-vp9"), reason="PyAV build without libvpx-vp9")
def test_vp9_keyframe_tells_the_size_the_record_lacks() -> None:
    options = (("deadline", "realtime"), ("cpu-used", "8"))
    tags = _video_tags(encode_flv("libvpx-vp9", 320, 240, 3, None, options))
    config = parse_video_tag(tags[0], 0)
    assert isinstance(config, CodecConfig) and config.width == 0
    frames = [f for f in (parse_video_tag(t, 0) for t in tags[1:]) if isinstance(f, Frame)]
    assert vp9.keyframe_size(frames[0].payload) == (320, 240)
    assert vp9.keyframe_size(frames[1].payload) is None  # inter frame
    completed = vp9.with_keyframe_size(config, frames[0].payload)
    assert completed is not None and (completed.width, completed.height) == (320, 240)
    assert vp9.with_keyframe_size(completed, frames[0].payload) is None  # already known


@given(st.binary(max_size=32))
def test_vp9_keyframe_size_never_raises(data: bytes) -> None:
    size = vp9.keyframe_size(data)
    assert size is None or (size[0] >= 1 and size[1] >= 1)


def test_bare_vpcc_form() -> None:
    bare = bytes([2, 31, 0xA2, 1, 1, 1, 0, 0])
    parsed = vp9.parse_vpcc(bare)
    assert (parsed.profile, parsed.level, parsed.bit_depth) == (2, 31, 10)
    assert vp9.codec_string(bare) == "vp09.02.31.10"


def test_av1_sequence_header_with_timing() -> None:
    from server.media.bits import BitWriter

    w = BitWriter()
    w.u(3, 0)
    w.flag(False)
    w.flag(False)  # profile 0, not still, full header
    w.flag(True)  # timing_info_present
    w.u(32, 1001)
    w.u(32, 60000)
    w.flag(True)
    w.u(1, 1)  # equal_picture_interval, uvlc(0)
    w.flag(True)  # decoder_model_info_present
    w.u(5, 9)
    w.u(32, 1)
    w.u(5, 3)
    w.u(5, 3)
    w.flag(True)  # initial_display_delay_present
    w.u(5, 0)  # one operating point
    w.u(12, 0)
    w.u(5, 9)  # level 9 > 7: tier bit
    w.flag(True)
    w.flag(True)  # decoder_model_present_for_this_op
    w.u(10, 0)
    w.u(10, 0)
    w.flag(False)
    w.flag(True)
    w.u(4, 9)
    w.u(4, 10)
    w.u(4, 10)
    w.u(11, 1279)
    w.u(11, 719)
    header = w.to_bytes()
    obu = bytes([0x0A, len(header)]) + header
    record = bytes([0x81, 0x09, 0x80, 0x00]) + obu
    parsed = av1.parse_av1c(record)
    assert (parsed.width, parsed.height, parsed.tier, parsed.level) == (1280, 720, 1, 9)
    assert parsed.fps == pytest.approx(59.94, abs=0.01)
    assert av1.codec_string(record) == "av01.0.09H.08"


@given(st.binary(max_size=48))
def test_fuzz_only_format_errors(data: bytes) -> None:
    for call in (
        lambda: av1.parse_av1c(b"\x81" + data),
        lambda: av1.iter_obus(data),
        lambda: vp9.parse_vpcc(data),
    ):
        with contextlib.suppress(MediaFormatError):
            call()
