from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.media import h264, nal
from server.media.bits import BitWriter
from server.media.errors import MediaFormatError
from server.media.flv import parse_video_tag
from server.media.frame import CodecConfig

from .vectors import Options, encode_annexb, encode_flv, iter_flv_tags, probe

X264_CASES = [
    # (width, height, options, profile_idc)
    (640, 360, (("preset", "ultrafast"),), 66),
    (1280, 720, (("preset", "veryfast"),), 100),
    (328, 184, (("preset", "veryfast"), ("profile", "main")), 77),
]


def _parameter_sets(width: int, height: int, options: Options) -> tuple[list[bytes], list[bytes]]:
    first_au, _ = encode_annexb("libx264", width, height, 2, options)[0]
    return h264.parameter_sets(nal.split_annexb(first_au))


@pytest.mark.parametrize(("width", "height", "options", "profile"), X264_CASES)
def test_sps_from_x264(width: int, height: int, options: Options, profile: int) -> None:
    sps, pps = _parameter_sets(width, height, options)
    assert len(sps) == 1 and len(pps) == 1
    info = h264.parse_sps(sps[0])
    assert (info.width, info.height) == (width, height)
    assert info.profile_idc == profile
    assert info.frame_mbs_only
    assert info.fps == pytest.approx(30.0)
    assert info.chroma_format_idc == 1 and info.bit_depth_luma == 8


def test_sps_agrees_with_ffmpeg_decoder() -> None:
    data = encode_flv("libx264", 640, 360, 3, "aac", (("preset", "ultrafast"),))
    video = probe(data)[0]
    body = next(b for t, _, b in iter_flv_tags(data) if t == 9)
    config = parse_video_tag(body, 0)
    assert isinstance(config, CodecConfig)
    assert (config.width, config.height) == (video["width"], video["height"])
    assert config.level == video["level"]
    assert video["profile"] == "Constrained Baseline" and config.profile == 66


@pytest.mark.parametrize(("width", "height", "options", "profile"), X264_CASES)
def test_avcc_build_matches_ffmpeg(width: int, height: int, options: Options, profile: int) -> None:
    data = encode_flv("libx264", width, height, 2, None, options)
    body = next(b for t, _, b in iter_flv_tags(data) if t == 9)
    assert body[:5] == b"\x17\x00\x00\x00\x00"
    record = body[5:]
    parsed = h264.parse_avcc(record)
    assert parsed.nal_length_size == 4 and parsed.profile == profile
    rebuilt = h264.build_avcc(parsed.sps, parsed.pps)
    assert h264.parse_avcc(rebuilt).sps == parsed.sps
    assert rebuilt[: len(record)] == record or rebuilt == record
    config = h264.config_from_parameter_sets(parsed.sps, parsed.pps)
    assert (config.width, config.height, config.profile) == (width, height, profile)


def test_keyframe_detection_matches_encoder() -> None:
    units = encode_annexb("libx264", 320, 240, 6, (("preset", "ultrafast"), ("g", "3")))
    assert [h264.is_keyframe_annexb(au) for au, _ in units] == [k for _, k in units]
    for au, key in units:
        assert h264.is_keyframe(nal.annexb_to_length_prefixed(au)) == key


def _interlaced_sps() -> bytes:
    """1080i High 4:2:0 SPS with cropping and 29.97 fps timing."""
    w = BitWriter()
    for value in (100, 0, 40):
        w.u(8, value)
    w.ue(0)  # sps id
    w.ue(1)  # chroma_format_idc
    w.ue(0)
    w.ue(0)  # bit depths
    w.flag(False)
    w.flag(False)  # no scaling matrix
    w.ue(0)  # log2_max_frame_num_minus4
    w.ue(0)  # poc type 0
    w.ue(0)
    w.ue(4)  # max_num_ref_frames
    w.flag(False)
    w.ue(119)  # 120 MBs wide
    w.ue(33)  # 34 map units
    w.flag(False)  # frame_mbs_only_flag = 0
    w.flag(True)  # mb_adaptive_frame_field_flag
    w.flag(True)  # direct_8x8_inference_flag
    w.flag(True)  # cropping
    for offset in (0, 0, 0, 2):
        w.ue(offset)
    w.flag(True)  # VUI
    w.flag(True)
    w.u(8, 1)  # aspect ratio 1:1
    w.flag(False)  # overscan
    w.flag(True)
    w.u(3, 5)
    w.flag(False)
    w.flag(True)
    w.u(24, 0x010101)  # colour description
    w.flag(False)  # chroma loc
    w.flag(True)
    w.u(32, 1001)
    w.u(32, 60000)
    w.flag(True)
    w.rbsp_trailing()
    return b"\x67" + w.to_bytes()


def test_interlaced_sps_with_cropping_and_timing() -> None:
    info = h264.parse_sps(_interlaced_sps())
    assert (info.width, info.height) == (1920, 1080)
    assert not info.frame_mbs_only
    assert info.fps == pytest.approx(29.97, abs=0.01)


def test_emulation_prevention_inside_sps() -> None:
    sps = _interlaced_sps()
    escaped = sps[:1] + sps[1:].replace(b"\x00\x00", b"\x00\x00\x03")
    assert escaped != sps
    assert h264.parse_sps(escaped) == h264.parse_sps(sps)


def test_with_length_size_4() -> None:
    sps, pps = _parameter_sets(640, 360, (("preset", "ultrafast"),))
    record = bytearray(h264.build_avcc(sps, pps))
    record[4] = 0xFD  # 2-byte lengths
    assert h264.parse_avcc(bytes(record)).nal_length_size == 2
    assert h264.parse_avcc(h264.with_length_size_4(bytes(record))).nal_length_size == 4


@pytest.mark.parametrize(
    "bad",
    [b"", b"\x01\x42", b"\x02" + bytes(10), b"\x01\x42\x00\x1e\xff\xe1\x00\x20\x67"],
)
def test_malformed_avcc(bad: bytes) -> None:
    with pytest.raises(MediaFormatError):
        h264.parse_avcc(bad)


@given(st.binary(max_size=64))
def test_sps_fuzz_only_format_errors(data: bytes) -> None:
    with contextlib.suppress(MediaFormatError):
        h264.parse_sps(b"\x67" + data)


@given(st.binary(max_size=64))
def test_avcc_fuzz_only_format_errors(data: bytes) -> None:
    with contextlib.suppress(MediaFormatError):
        h264.config_from_avcc(b"\x01" + data)


@given(st.integers(0, 10**6), st.integers(1, 255))
def test_mutated_real_sps_only_format_errors(position: int, xor: int) -> None:
    sps = bytearray(_interlaced_sps())
    index = 1 + position % (len(sps) - 1)
    sps[index] ^= xor
    with contextlib.suppress(MediaFormatError):
        h264.parse_sps(bytes(sps))
