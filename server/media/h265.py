"""H.265/HEVC: SPS parsing, the hvcC record, keyframe (IRAP) detection.

Same scope as ``h264``: picture size, profile/tier/level and frame rate, the decoder
configuration record for FLV/fMP4, and IRAP detection for Annex B input. The SPS walk
goes as far as the VUI timing info, which means getting through the short-term
reference picture sets; everything is bounded by the spec's own limits.
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

NAL_IRAP_FIRST = 16  # BLA_W_LP
NAL_IRAP_LAST = 23  # reserved IRAP range ends here
NAL_VPS = 32
NAL_SPS = 33
NAL_PPS = 34
NAL_AUD = 35
NAL_SEI_PREFIX = 39

AUD_NAL = b"\x46\x01\x50"
"""Access unit delimiter (pic_type 2 = any), which MPEG-TS wants first in a PES."""

_HVCC_HEADER = 23


def nal_type(nal: bytes) -> int:
    """nal_unit_type of a NAL unit (bits 1-6 of the 2-byte NAL header)."""
    if len(nal) < 2:
        raise MediaFormatError("H.265 NAL unit shorter than its header")
    return (nal[0] >> 1) & 0x3F


@dataclass(frozen=True, slots=True)
class H265Sps:
    """The SPS fields outputs need (sizes after the conformance window)."""

    profile_space: int
    tier: int
    profile_idc: int
    compatibility_flags: int
    constraint_flags: int
    level_idc: int
    max_sub_layers: int
    temporal_id_nesting: bool
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    width: int
    height: int
    fps: float | None


def _profile_tier_level(r: BitReader, max_sub_layers_minus1: int) -> tuple[int, ...]:
    """general_profile_tier_level fields; sub-layer entries are skipped."""
    profile_space, tier, profile_idc = r.u(2), r.u(1), r.u(5)
    compatibility, constraints, level = r.u(32), r.u(48), r.u(8)
    flags = [(r.flag(), r.flag()) for _ in range(max_sub_layers_minus1)]
    if max_sub_layers_minus1 > 0:
        r.skip(2 * (8 - max_sub_layers_minus1))
    for profile_present, level_present in flags:
        r.skip((88 if profile_present else 0) + (8 if level_present else 0))
    return profile_space, tier, profile_idc, compatibility, constraints, level


def _skip_scaling_list_data(r: BitReader) -> None:
    for size_id in range(4):
        for _ in range(0, 6, 3 if size_id == 3 else 1):
            if not r.flag():  # scaling_list_pred_mode_flag
                r.ue()
                continue
            if size_id > 1:
                r.se()
            for _ in range(min(64, 1 << (4 + (size_id << 1)))):
                r.se()


def _st_ref_pic_set(r: BitReader, idx: int, num_delta_pocs: list[int]) -> None:
    """Skip st_ref_pic_set(idx) as it appears in an SPS, recording NumDeltaPocs[idx]."""
    if idx != 0 and r.flag():  # inter_ref_pic_set_prediction_flag
        r.skip(1)  # delta_rps_sign
        r.ue()  # abs_delta_rps_minus1
        count = 0
        for _ in range(num_delta_pocs[idx - 1] + 1):
            used = r.flag()
            if used or r.flag():  # use_delta_flag is read only when not used
                count += 1
        num_delta_pocs.append(count)
        return
    negative, positive = r.ue(), r.ue()
    if negative > 16 or positive > 16:
        raise MediaFormatError("too many pictures in a short-term RPS")
    for _ in range(negative + positive):
        r.ue()  # delta_poc_sX_minus1
        r.skip(1)  # used_by_curr_pic_sX_flag
    num_delta_pocs.append(negative + positive)


def _skip_coding_tools(r: BitReader, poc_lsb_bits: int) -> None:
    """From log2_min_luma_coding_block_size_minus3 to strong_intra_smoothing_enabled_flag."""
    for _ in range(6):
        r.ue()  # block sizes and transform hierarchy depths
    if r.flag() and r.flag():  # scaling_list_enabled_flag, sps_scaling_list_data_present_flag
        _skip_scaling_list_data(r)
    r.skip(2)  # amp_enabled_flag, sample_adaptive_offset_enabled_flag
    if r.flag():  # pcm_enabled_flag
        r.skip(8)
        r.ue()
        r.ue()
        r.skip(1)
    sets = r.ue()
    if sets > 64:
        raise MediaFormatError("num_short_term_ref_pic_sets too large")
    num_delta_pocs: list[int] = []
    for idx in range(sets):
        _st_ref_pic_set(r, idx, num_delta_pocs)
    if r.flag():  # long_term_ref_pics_present_flag
        count = r.ue()
        if count > 32:
            raise MediaFormatError("num_long_term_ref_pics_sps too large")
        r.skip(count * (poc_lsb_bits + 1))
    r.skip(2)  # sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag


def _vui_fps(r: BitReader) -> float | None:
    """Walk the VUI up to vui_timing_info; fps = time_scale / num_units_in_tick."""
    skip_vui_head(r)
    r.skip(3)  # neutral_chroma_indication, field_seq, frame_field_info_present
    if r.flag():  # default_display_window_flag
        for _ in range(4):
            r.ue()
    timing = vui_timing(r)
    return None if timing is None else timing[1] / timing[0]


def _picture_format(r: BitReader) -> tuple[int, int, int]:
    """chroma_format_idc, cropped width, cropped height."""
    chroma = r.ue()
    if chroma > 3:
        raise MediaFormatError(f"invalid chroma_format_idc {chroma}")
    separate = r.flag() if chroma == 3 else False
    width, height = r.ue(), r.ue()
    crop = (r.ue(), r.ue(), r.ue(), r.ue()) if r.flag() else (0, 0, 0, 0)
    array_type = 0 if separate else chroma
    sub_w = 2 if array_type in (1, 2) else 1
    sub_h = 2 if array_type == 1 else 1
    width -= sub_w * (crop[0] + crop[1])
    height -= sub_h * (crop[2] + crop[3])
    if width <= 0 or height <= 0:
        raise MediaFormatError("conformance window removes the whole picture")
    return chroma, width, height


def parse_sps(nal: bytes) -> H265Sps:
    """Parse a sequence parameter set NAL unit (2-byte header included, still escaped)."""
    if nal_type(nal) != NAL_SPS:
        raise MediaFormatError("not an H.265 SPS NAL unit")
    r = BitReader(remove_emulation_prevention(nal[2:]))
    r.skip(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = r.u(3)
    if max_sub_layers_minus1 > 6:
        raise MediaFormatError("invalid sps_max_sub_layers_minus1")
    nesting = r.flag()
    space, tier, profile_idc, compat, constraints, level = _profile_tier_level(
        r, max_sub_layers_minus1
    )
    if r.ue() > 15:
        raise MediaFormatError("invalid sps_seq_parameter_set_id")
    chroma, width, height = _picture_format(r)
    depth_luma, depth_chroma = r.ue() + 8, r.ue() + 8
    poc_lsb_bits = r.ue() + 4
    if depth_luma > 16 or depth_chroma > 16 or poc_lsb_bits > 16:
        raise MediaFormatError("invalid bit depth or POC size")
    ordering_all = r.flag()  # sps_sub_layer_ordering_info_present_flag
    for _ in range(max_sub_layers_minus1 + 1 if ordering_all else 1):
        r.ue()
        r.ue()
        r.ue()
    _skip_coding_tools(r, poc_lsb_bits)
    fps = _vui_fps(r) if r.flag() else None
    return H265Sps(
        profile_space=space,
        tier=tier,
        profile_idc=profile_idc,
        compatibility_flags=compat,
        constraint_flags=constraints,
        level_idc=level,
        max_sub_layers=max_sub_layers_minus1 + 1,
        temporal_id_nesting=nesting,
        chroma_format_idc=chroma,
        bit_depth_luma=depth_luma,
        bit_depth_chroma=depth_chroma,
        width=width,
        height=height,
        fps=fps,
    )


@dataclass(frozen=True, slots=True)
class NalArray:
    """One array of an hvcC record: NAL units of one type."""

    nal_type: int
    complete: bool
    nals: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class HvcConfig:
    """HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3.1)."""

    profile_space: int
    tier: int
    profile_idc: int
    compatibility_flags: int
    constraint_flags: int
    level_idc: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    num_temporal_layers: int
    temporal_id_nested: bool
    nal_length_size: int
    arrays: tuple[NalArray, ...]

    def nals_of_type(self, kind: int) -> list[bytes]:
        """All NAL units of ``kind`` (e.g. ``NAL_SPS``) across the arrays."""
        return [nal for a in self.arrays if a.nal_type == kind for nal in a.nals]


def _parse_arrays(data: bytes, count: int) -> tuple[NalArray, ...]:
    arrays: list[NalArray] = []
    pos = _HVCC_HEADER
    for _ in range(count):
        if pos + 3 > len(data):
            raise MediaFormatError("truncated hvcC array header")
        head = data[pos]
        (num,) = struct.unpack_from(">H", data, pos + 1)
        pos += 3
        nals: list[bytes] = []
        for _ in range(num):
            if pos + 2 > len(data):
                raise MediaFormatError("truncated hvcC NAL unit length")
            (size,) = struct.unpack_from(">H", data, pos)
            if size == 0 or pos + 2 + size > len(data):
                raise MediaFormatError("truncated hvcC NAL unit")
            nals.append(data[pos + 2 : pos + 2 + size])
            pos += 2 + size
        arrays.append(NalArray(head & 0x3F, bool(head & 0x80), tuple(nals)))
    return tuple(arrays)


def parse_hvcc(data: bytes) -> HvcConfig:
    """Parse an hvcC record as carried in an FLV sequence start or an MP4 ``hvcC`` box."""
    if len(data) < _HVCC_HEADER:
        raise MediaFormatError("hvcC record too short")
    if data[0] > 1:
        raise MediaFormatError(f"unsupported hvcC version {data[0]}")
    (compat,) = struct.unpack_from(">I", data, 2)
    b21 = data[21]
    return HvcConfig(
        profile_space=data[1] >> 6,
        tier=(data[1] >> 5) & 1,
        profile_idc=data[1] & 0x1F,
        compatibility_flags=compat,
        constraint_flags=int.from_bytes(data[6:12], "big"),
        level_idc=data[12],
        chroma_format_idc=data[16] & 0x03,
        bit_depth_luma=(data[17] & 0x07) + 8,
        bit_depth_chroma=(data[18] & 0x07) + 8,
        num_temporal_layers=(b21 >> 3) & 0x07,
        temporal_id_nested=bool(b21 & 0x04),
        nal_length_size=(b21 & 0x03) + 1,
        arrays=_parse_arrays(data, data[22]),
    )


def _array_bytes(kind: int, nals: list[bytes]) -> bytes:
    parts = [bytes((0x80 | kind,)), struct.pack(">H", len(nals))]
    parts += [struct.pack(">H", len(n)) + n for n in nals]
    return b"".join(parts)


def build_hvcc(vps: Iterable[bytes], sps: Iterable[bytes], pps: Iterable[bytes]) -> bytes:
    """Build an hvcC record (4-byte NAL lengths, arrays complete) from parameter sets."""
    vps_list, sps_list, pps_list = list(vps), list(sps), list(pps)
    if not sps_list:
        raise MediaFormatError("hvcC needs an SPS")
    info = parse_sps(sps_list[0])
    header = struct.pack(
        ">BBIHIBHBBBBHBB",
        1,
        (info.profile_space << 6) | (info.tier << 5) | info.profile_idc,
        info.compatibility_flags,
        info.constraint_flags >> 32,
        info.constraint_flags & 0xFFFFFFFF,
        info.level_idc,
        0xF000,  # reserved + min_spatial_segmentation_idc 0
        0xFC,  # reserved + parallelismType 0 (unknown)
        0xFC | info.chroma_format_idc,
        0xF8 | (info.bit_depth_luma - 8),
        0xF8 | (info.bit_depth_chroma - 8),
        0,  # avgFrameRate unknown
        (info.max_sub_layers << 3) | (int(info.temporal_id_nesting) << 2) | 0x03,
        sum(1 for x in (vps_list, sps_list, pps_list) if x),
    )
    arrays = [
        _array_bytes(kind, nals)
        for kind, nals in ((NAL_VPS, vps_list), (NAL_SPS, sps_list), (NAL_PPS, pps_list))
        if nals
    ]
    return header + b"".join(arrays)


def with_length_size_4(record: bytes) -> bytes:
    """The same hvcC record but declaring 4-byte NAL lengths (the canonical frame form)."""
    if len(record) < _HVCC_HEADER:
        raise MediaFormatError("hvcC record too short")
    return record[:21] + bytes((record[21] | 0x03,)) + record[22:]


def config_from_hvcc(record: bytes) -> CodecConfig:
    """CodecConfig from an hvcC record, with size and frame rate from its SPS."""
    hvcc = parse_hvcc(record)
    sps_list = hvcc.nals_of_type(NAL_SPS)
    if not sps_list:
        raise MediaFormatError("hvcC record has no SPS")
    return video_config(Codec.H265, with_length_size_4(record), parse_sps(sps_list[0]))


def config_from_parameter_sets(
    vps: Iterable[bytes], sps: Iterable[bytes], pps: Iterable[bytes]
) -> CodecConfig:
    """CodecConfig from VPS/SPS/PPS found in an Annex B stream (MPEG-TS ingest)."""
    return config_from_hvcc(build_hvcc(vps, sps, pps))


def parameter_sets(nals: Iterable[bytes]) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """The VPS, SPS and PPS NAL units among ``nals``, in order."""
    found: dict[int, list[bytes]] = {NAL_VPS: [], NAL_SPS: [], NAL_PPS: []}
    for nal in nals:
        bucket = found.get(nal_type(nal))
        if bucket is not None:
            bucket.append(nal)
    return found[NAL_VPS], found[NAL_SPS], found[NAL_PPS]


def _is_irap(header: int) -> bool:
    return NAL_IRAP_FIRST <= (header >> 1) & 0x3F <= NAL_IRAP_LAST


def is_keyframe_annexb(data: bytes) -> bool:
    """True when an Annex B access unit contains an IRAP picture (IDR, CRA or BLA)."""
    return any(_is_irap(data[s]) for s, _ in annexb_nal_spans(data))


def is_keyframe(sample: bytes) -> bool:
    """True when a 4-byte length-prefixed sample contains an IRAP picture."""
    return any(_is_irap(sample[s]) for s, e in length_prefixed_spans(sample) if e > s)
