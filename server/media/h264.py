"""H.264/AVC: SPS parsing, the avcC record, keyframe detection.

Only what a relay needs: picture size, profile/level and frame rate for playlists and
onMetaData, the decoder configuration record for FLV/fMP4, and "does this access unit
start a GOP" for Annex B input (MPEG-TS over SRT), where no container flag says so.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from .bits import BitReader, remove_emulation_prevention
from .errors import MediaFormatError
from .frame import Codec, CodecConfig
from .nal import annexb_nal_spans, length_prefixed_spans
from .sps import skip_vui_head, video_config, vui_timing

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9

AUD_NAL = b"\x09\xf0"
"""Access unit delimiter (primary_pic_type 7 = any), which MPEG-TS wants first in a PES."""

# profile_idc values whose SPS carries chroma_format_idc, bit depths and scaling lists.
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
_MAX_PARAMETER_SETS = 32


def nal_type(nal: bytes) -> int:
    """nal_unit_type of a NAL unit (first byte of the NAL header)."""
    if not nal:
        raise MediaFormatError("empty NAL unit")
    return nal[0] & 0x1F


@dataclass(frozen=True, slots=True)
class H264Sps:
    """The SPS fields outputs need (sizes already cropped)."""

    profile_idc: int
    constraint_flags: int
    level_idc: int
    sps_id: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    width: int
    height: int
    frame_mbs_only: bool
    fps: float | None


def _skip_scaling_list(r: BitReader, size: int) -> None:
    last = 8
    nxt = 8
    for _ in range(size):
        if nxt != 0:
            nxt = (last + r.se()) % 256
        last = last if nxt == 0 else nxt


def _parse_high_profile_fields(r: BitReader) -> tuple[int, bool, int, int]:
    """chroma_format_idc, separate_colour_plane, bit depths; skips scaling matrices."""
    chroma_format_idc = r.ue()
    if chroma_format_idc > 3:
        raise MediaFormatError(f"invalid chroma_format_idc {chroma_format_idc}")
    separate_planes = r.flag() if chroma_format_idc == 3 else False
    depth_luma = r.ue() + 8
    depth_chroma = r.ue() + 8
    if depth_luma > 14 or depth_chroma > 14:
        raise MediaFormatError("invalid bit depth")
    r.skip(1)  # qpprime_y_zero_transform_bypass_flag
    if r.flag():  # seq_scaling_matrix_present_flag
        for i in range(8 if chroma_format_idc != 3 else 12):
            if r.flag():
                _skip_scaling_list(r, 16 if i < 6 else 64)
    return chroma_format_idc, separate_planes, depth_luma, depth_chroma


def _skip_pic_order_cnt(r: BitReader) -> None:
    poc_type = r.ue()
    if poc_type == 0:
        r.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif poc_type == 1:
        r.skip(1)  # delta_pic_order_always_zero_flag
        r.se()
        r.se()
        cycle = r.ue()
        if cycle > 255:
            raise MediaFormatError("num_ref_frames_in_pic_order_cnt_cycle too large")
        for _ in range(cycle):
            r.se()
    elif poc_type != 2:
        raise MediaFormatError(f"invalid pic_order_cnt_type {poc_type}")


def _vui_fps(r: BitReader) -> float | None:
    """Walk the VUI up to timing_info; fps = time_scale / (2 * num_units_in_tick)."""
    skip_vui_head(r)
    timing = vui_timing(r)
    return None if timing is None else timing[1] / (2 * timing[0])


def parse_sps(nal: bytes) -> H264Sps:
    """Parse a sequence parameter set NAL unit (header byte included, still escaped)."""
    if nal_type(nal) != NAL_SPS:
        raise MediaFormatError("not an H.264 SPS NAL unit")
    r = BitReader(remove_emulation_prevention(nal[1:]))
    profile_idc, constraint_flags, level_idc = r.u(8), r.u(8), r.u(8)
    sps_id = r.ue()
    if sps_id > 31:
        raise MediaFormatError(f"invalid seq_parameter_set_id {sps_id}")
    chroma, separate, depth_luma, depth_chroma = 1, False, 8, 8
    if profile_idc in _HIGH_PROFILES:
        chroma, separate, depth_luma, depth_chroma = _parse_high_profile_fields(r)
    r.ue()  # log2_max_frame_num_minus4
    _skip_pic_order_cnt(r)
    r.ue()  # max_num_ref_frames
    r.skip(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = r.ue() + 1
    height_units = r.ue() + 1
    frame_mbs_only = r.flag()
    if not frame_mbs_only:
        r.skip(1)  # mb_adaptive_frame_field_flag
    r.skip(1)  # direct_8x8_inference_flag
    crop = (r.ue(), r.ue(), r.ue(), r.ue()) if r.flag() else (0, 0, 0, 0)
    fps = _vui_fps(r) if r.flag() else None
    array_type = 0 if separate else chroma
    crop_x = 1 if array_type in (0, 3) else 2
    crop_y = (2 if array_type == 1 else 1) * (1 if frame_mbs_only else 2)
    width = width_mbs * 16 - crop_x * (crop[0] + crop[1])
    height = (1 if frame_mbs_only else 2) * height_units * 16 - crop_y * (crop[2] + crop[3])
    if width <= 0 or height <= 0:
        raise MediaFormatError("cropping removes the whole picture")
    return H264Sps(
        profile_idc=profile_idc,
        constraint_flags=constraint_flags,
        level_idc=level_idc,
        sps_id=sps_id,
        chroma_format_idc=chroma,
        bit_depth_luma=depth_luma,
        bit_depth_chroma=depth_chroma,
        width=width,
        height=height,
        frame_mbs_only=frame_mbs_only,
        fps=fps,
    )


@dataclass(frozen=True, slots=True)
class AvcConfig:
    """AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1); ``tail`` = bytes after PPS."""

    profile: int
    compatibility: int
    level: int
    nal_length_size: int
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]
    tail: bytes = b""


def _read_sets(data: bytes, pos: int, count: int) -> tuple[tuple[bytes, ...], int]:
    sets: list[bytes] = []
    for _ in range(count):
        if pos + 2 > len(data):
            raise MediaFormatError("truncated parameter set length")
        (size,) = struct.unpack_from(">H", data, pos)
        pos += 2
        if size == 0 or pos + size > len(data):
            raise MediaFormatError("truncated parameter set")
        sets.append(data[pos : pos + size])
        pos += size
    return tuple(sets), pos


def parse_avcc(data: bytes) -> AvcConfig:
    """Parse an avcC record as carried in an FLV sequence header or an MP4 ``avcC`` box."""
    if len(data) < 7:
        raise MediaFormatError("avcC record too short")
    if data[0] != 1:
        raise MediaFormatError(f"unsupported avcC version {data[0]}")
    sps, pos = _read_sets(data, 6, data[5] & 0x1F)
    if pos >= len(data):
        raise MediaFormatError("avcC record has no PPS count")
    pps, pos = _read_sets(data, pos + 1, data[pos])
    return AvcConfig(
        profile=data[1],
        compatibility=data[2],
        level=data[3],
        nal_length_size=(data[4] & 0x03) + 1,
        sps=sps,
        pps=pps,
        tail=data[pos:],
    )


def build_avcc(sps: Iterable[bytes], pps: Iterable[bytes]) -> bytes:
    """Build an avcC record (4-byte NAL lengths) from SPS/PPS NAL units.

    High profiles get the chroma/bit-depth extension that ISO/IEC 14496-15 requires for
    them, since strict fMP4 parsers (and Safari) look for it.
    """
    sps_list, pps_list = list(sps), list(pps)
    if not sps_list or len(sps_list) > _MAX_PARAMETER_SETS or len(pps_list) > 255:
        raise MediaFormatError("avcC needs 1-31 SPS and at most 255 PPS")
    first = sps_list[0]
    if len(first) < 4:
        raise MediaFormatError("SPS too short")
    parts = [bytes((1, first[1], first[2], first[3], 0xFF, 0xE0 | len(sps_list)))]
    parts += [struct.pack(">H", len(s)) + s for s in sps_list]
    parts.append(bytes((len(pps_list),)))
    parts += [struct.pack(">H", len(p)) + p for p in pps_list]
    if first[1] in (100, 110, 122, 144):
        info = parse_sps(first)
        parts.append(
            bytes(
                (
                    0xFC | info.chroma_format_idc,
                    0xF8 | (info.bit_depth_luma - 8),
                    0xF8 | (info.bit_depth_chroma - 8),
                    0,  # numOfSequenceParameterSetExt
                )
            )
        )
    return b"".join(parts)


def with_length_size_4(record: bytes) -> bytes:
    """The same avcC record but declaring 4-byte NAL lengths (the canonical frame form)."""
    if len(record) < 5:
        raise MediaFormatError("avcC record too short")
    return record[:4] + bytes((record[4] | 0x03,)) + record[5:]


def config_from_avcc(record: bytes) -> CodecConfig:
    """CodecConfig from an avcC record, with picture size and frame rate from its SPS."""
    avcc = parse_avcc(record)
    if not avcc.sps:
        raise MediaFormatError("avcC record has no SPS")
    return video_config(Codec.H264, with_length_size_4(record), parse_sps(avcc.sps[0]))


def config_from_parameter_sets(sps: Iterable[bytes], pps: Iterable[bytes]) -> CodecConfig:
    """CodecConfig from SPS/PPS found in an Annex B stream (MPEG-TS ingest)."""
    return config_from_avcc(build_avcc(sps, pps))


def parameter_sets(nals: Iterable[bytes]) -> tuple[list[bytes], list[bytes]]:
    """The SPS and PPS NAL units among ``nals``, in order."""
    sps: list[bytes] = []
    pps: list[bytes] = []
    for nal in nals:
        kind = nal_type(nal)
        if kind == NAL_SPS:
            sps.append(nal)
        elif kind == NAL_PPS:
            pps.append(nal)
    return sps, pps


def is_keyframe_annexb(data: bytes) -> bool:
    """True when an Annex B access unit contains an IDR slice."""
    return any(data[s] & 0x1F == NAL_IDR for s, _ in annexb_nal_spans(data))


def is_keyframe(sample: bytes) -> bool:
    """True when a 4-byte length-prefixed sample contains an IDR slice."""
    return any(sample[s] & 0x1F == NAL_IDR for s, e in length_prefixed_spans(sample) if e > s)
