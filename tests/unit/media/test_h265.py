from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.media import h265, nal
from server.media.bits import BitWriter
from server.media.codec_string import rfc6381_codec
from server.media.errors import MediaFormatError
from server.media.flv import parse_video_tag
from server.media.frame import CodecConfig

from .vectors import QUIET, encode_annexb, encode_flv, has_codec, iter_flv_tags, probe

pytestmark = pytest.mark.skipif(not has_codec("libx265"), reason="PyAV build without libx265")

OPTIONS = (("preset", "ultrafast"), *QUIET.items())
SIZES = [(320, 240), (328, 184), (352, 288)]


def _parameter_sets(
    width: int, height: int, frames: int = 2
) -> tuple[list[bytes], list[bytes], list[bytes]]:
    first_au, _ = encode_annexb("libx265", width, height, frames, OPTIONS)[0]
    return h265.parameter_sets(nal.split_annexb(first_au))


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_sps_from_x265(width: int, height: int) -> None:
    vps, sps, pps = _parameter_sets(width, height)
    assert len(vps) == len(sps) == len(pps) == 1
    info = h265.parse_sps(sps[0])
    assert (info.width, info.height) == (width, height)
    assert info.profile_idc == 1  # Main
    assert info.fps == pytest.approx(30.0)
    assert info.chroma_format_idc == 1 and info.bit_depth_luma == 8


def test_flv_sequence_start_agrees_with_ffmpeg_decoder() -> None:
    data = encode_flv("libx265", 320, 240, 3, None, OPTIONS)
    video = probe(data)[0]
    body = next(b for t, _, b in iter_flv_tags(data) if t == 9)
    assert body[:5] == b"\x90hvc1"
    config = parse_video_tag(body, 0)
    assert isinstance(config, CodecConfig)
    assert (config.width, config.height) == (video["width"], video["height"]) == (320, 240)
    assert config.level == video["level"]
    assert video["profile"] == "Main" and config.profile == 1
    assert rfc6381_codec(config) == "hvc1.1.6.L60.90"


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_hvcc_round_trip(width: int, height: int) -> None:
    vps, sps, pps = _parameter_sets(width, height)
    record = h265.build_hvcc(vps, sps, pps)
    parsed = h265.parse_hvcc(record)
    assert parsed.nal_length_size == 4
    assert parsed.nals_of_type(h265.NAL_VPS) == vps
    assert parsed.nals_of_type(h265.NAL_SPS) == sps
    assert parsed.nals_of_type(h265.NAL_PPS) == pps
    info = h265.parse_sps(sps[0])
    assert parsed.profile_idc == info.profile_idc and parsed.level_idc == info.level_idc
    assert parsed.constraint_flags == info.constraint_flags
    config = h265.config_from_parameter_sets(vps, sps, pps)
    assert (config.width, config.height) == (width, height)


def test_ffmpeg_hvcc_fields_match_our_build() -> None:
    data = encode_flv("libx265", 320, 240, 2, None, OPTIONS)
    body = next(b for t, _, b in iter_flv_tags(data) if t == 9)
    theirs = h265.parse_hvcc(body[5:])
    ours = h265.parse_hvcc(
        h265.build_hvcc(
            theirs.nals_of_type(h265.NAL_VPS),
            theirs.nals_of_type(h265.NAL_SPS),
            theirs.nals_of_type(h265.NAL_PPS),
        )
    )
    for field in ("profile_idc", "tier", "compatibility_flags", "constraint_flags", "level_idc"):
        assert getattr(ours, field) == getattr(theirs, field)
    assert ours.chroma_format_idc == theirs.chroma_format_idc
    assert ours.nals_of_type(h265.NAL_SPS) == theirs.nals_of_type(h265.NAL_SPS)


def test_keyframe_detection_matches_encoder() -> None:
    units = encode_annexb("libx265", 320, 240, 6, (*OPTIONS, ("g", "3")))
    assert [h265.is_keyframe_annexb(au) for au, _ in units] == [k for _, k in units]
    assert any(k for _, k in units) and not all(k for _, k in units)
    for au, key in units:
        assert h265.is_keyframe(nal.annexb_to_length_prefixed(au)) == key


@pytest.mark.parametrize("bad", [b"", b"\x01" + bytes(21), b"\x01" + bytes(21) + b"\x01\x21"])
def test_malformed_hvcc(bad: bytes) -> None:
    with pytest.raises(MediaFormatError):
        h265.config_from_hvcc(bad)


@given(st.binary(max_size=96))
def test_sps_fuzz_only_format_errors(data: bytes) -> None:
    with contextlib.suppress(MediaFormatError):
        h265.parse_sps(b"\x42\x01" + data)


@given(st.integers(0, 10**6), st.integers(1, 255))
def test_mutated_real_sps_only_format_errors(position: int, xor: int) -> None:
    _, sps_list, _ = _parameter_sets(320, 240)
    sps = bytearray(sps_list[0])
    sps[2 + position % (len(sps) - 2)] ^= xor
    with contextlib.suppress(MediaFormatError):
        h265.parse_sps(bytes(sps))


@given(st.binary(max_size=80))
def test_hvcc_fuzz_only_format_errors(data: bytes) -> None:
    with contextlib.suppress(MediaFormatError):
        h265.config_from_hvcc(b"\x01" + data)


def _write_header(w: BitWriter) -> None:
    """Sub-layers, Main 10 high tier PTL, 1920x1080 (cropped from 1088), 10-bit."""
    w.u(4, 0)  # vps id
    w.u(3, 1)  # max_sub_layers_minus1 = 1
    w.flag(True)  # temporal_id_nesting
    w.u(2, 0)
    w.u(1, 1)  # high tier
    w.u(5, 2)  # Main 10
    w.u(32, 0x20000000)
    w.u(48, 0x900000000000)
    w.u(8, 123)
    w.flag(True)  # sub_layer_profile_present
    w.flag(True)  # sub_layer_level_present
    w.u(2 * 7, 0)  # reserved_zero_2bits for i in 1..7
    w.u(88, 0)
    w.u(8, 120)
    w.ue(0)  # sps id
    w.ue(1)  # 4:2:0
    w.ue(1920)
    w.ue(1088)
    w.flag(True)  # conformance window
    for offset in (0, 0, 0, 4):
        w.ue(offset)
    w.ue(2)
    w.ue(2)  # 10-bit
    w.ue(4)  # log2_max_pic_order_cnt_lsb_minus4 -> 8 bits
    w.flag(True)  # sub_layer_ordering_info for all sub-layers
    for _ in range(2):
        w.ue(4)
        w.ue(2)
        w.ue(0)
    for value in (0, 3, 0, 3, 1, 1):
        w.ue(value)


def _write_scaling_lists_and_pcm(w: BitWriter) -> None:
    w.flag(True)  # scaling_list_enabled
    w.flag(True)  # sps_scaling_list_data_present
    for size_id in range(4):
        for matrix_id in range(0, 6, 3 if size_id == 3 else 1):
            explicit = matrix_id % 2 == 0
            w.flag(explicit)
            if not explicit:
                w.ue(1)
                continue
            if size_id > 1:
                w.se(8)
            for _ in range(min(64, 1 << (4 + (size_id << 1)))):
                w.se(-1)
    w.flag(True)  # amp
    w.flag(True)  # sao
    w.flag(True)  # pcm
    w.u(4, 7)
    w.u(4, 7)
    w.ue(0)
    w.ue(1)
    w.flag(False)


def _write_reference_sets(w: BitWriter) -> None:
    w.ue(3)  # three short-term RPS
    w.ue(2)  # rps 0: two negative, one positive
    w.ue(1)
    for _ in range(3):
        w.ue(0)
        w.flag(True)
    w.flag(True)  # rps 1: inter_ref_pic_set_prediction_flag
    w.flag(False)
    w.ue(0)
    for used in (True, False, True, False):  # NumDeltaPocs[0] + 1 = 4 entries
        w.flag(used)
        if not used:
            w.flag(True)  # use_delta_flag -> NumDeltaPocs[1] = 4
    w.flag(True)  # rps 2: predicted from rps 1 (5 entries)
    w.flag(True)
    w.ue(1)
    for _ in range(5):
        w.flag(False)
        w.flag(False)
    w.flag(True)  # long_term_ref_pics_present
    w.ue(2)
    for _ in range(2):
        w.u(8, 0x55)
        w.flag(True)
    w.flag(True)
    w.flag(True)  # temporal mvp, strong intra smoothing


def _write_vui(w: BitWriter) -> None:
    w.flag(True)  # VUI
    w.flag(False)  # aspect
    w.flag(False)  # overscan
    w.flag(False)  # video signal
    w.flag(False)  # chroma loc
    w.u(3, 0)
    w.flag(True)  # default display window
    for offset in (1, 2, 3, 4):
        w.ue(offset)
    w.flag(True)  # timing
    w.u(32, 1001)
    w.u(32, 60000)


def _rich_sps() -> bytes:
    """An SPS using syntax x265 never writes (it was checked): inter RPS prediction,
    explicit scaling lists, PCM, long-term refs, sub-layers, VUI with timing."""
    w = BitWriter()
    _write_header(w)
    _write_scaling_lists_and_pcm(w)
    _write_reference_sets(w)
    _write_vui(w)
    w.rbsp_trailing()
    return b"\x42\x01" + w.to_bytes()


def test_rich_hand_built_sps() -> None:
    info = h265.parse_sps(_rich_sps())
    assert (info.width, info.height) == (1920, 1080)
    assert (info.tier, info.profile_idc, info.level_idc, info.max_sub_layers) == (1, 2, 123, 2)
    assert info.bit_depth_luma == 10
    assert info.fps == pytest.approx(59.94, abs=0.01)
    record = h265.build_hvcc([], [_rich_sps()], [])
    assert rfc6381_codec(h265.config_from_hvcc(record)) == "hvc1.2.4.H123.90"
