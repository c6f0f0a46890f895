"""VP9: the VP codec configuration record (``vpcC``) used by Enhanced RTMP and fMP4.

FFmpeg writes it with the 4-byte FullBox version/flags in front (as in the MP4 box body);
the bare 8-byte form also exists, so both are accepted.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace

from .bits import BitReader
from .errors import MediaFormatError
from .frame import Codec, CodecConfig, TrackKind

_RECORD = struct.Struct(">BBBBBBH")


@dataclass(frozen=True, slots=True)
class VpConfig:
    """VPCodecConfigurationRecord fields."""

    profile: int
    level: int
    bit_depth: int
    chroma_subsampling: int
    full_range: bool
    colour_primaries: int
    transfer_characteristics: int
    matrix_coefficients: int


def parse_vpcc(data: bytes) -> VpConfig:
    """Parse a vpcC record, with or without the FullBox version/flags prefix."""
    body = data
    if len(data) >= 12 and data[0] == 1 and data[1:4] == b"\x00\x00\x00":
        body = data[4:]
    if len(body) < _RECORD.size:
        raise MediaFormatError("vpcC record too short")
    profile, level, packed, primaries, transfer, matrix, init_size = _RECORD.unpack_from(body)
    if len(body) < _RECORD.size + init_size:
        raise MediaFormatError("truncated vpcC codec initialization data")
    return VpConfig(
        profile=profile,
        level=level,
        bit_depth=packed >> 4,
        chroma_subsampling=(packed >> 1) & 0x07,
        full_range=bool(packed & 1),
        colour_primaries=primaries,
        transfer_characteristics=transfer,
        matrix_coefficients=matrix,
    )


def build_vpcc(config: VpConfig) -> bytes:
    """Serialize a vpcC record in FFmpeg's form (version 1 FullBox header included)."""
    packed = (config.bit_depth << 4) | (config.chroma_subsampling << 1) | int(config.full_range)
    return b"\x01\x00\x00\x00" + _RECORD.pack(
        config.profile,
        config.level,
        packed,
        config.colour_primaries,
        config.transfer_characteristics,
        config.matrix_coefficients,
        0,
    )


def config_from_vpcc(record: bytes) -> CodecConfig:
    """CodecConfig of a VP9 track (picture size is not in the record, so it stays 0)."""
    vpcc = parse_vpcc(record)
    return CodecConfig(
        track=TrackKind.VIDEO,
        codec=Codec.VP9,
        extradata=bytes(record),
        profile=vpcc.profile,
        level=vpcc.level,
    )


_SYNC_CODE = 0x498342
_CS_RGB = 7


def keyframe_size(frame: bytes) -> tuple[int, int] | None:
    """Picture size from a VP9 keyframe's uncompressed header (VP9 spec 6.2).

    vpcC carries no size, so a VP9 track's config learns it from its first keyframe.
    None for inter frames, shown-existing frames and anything that does not parse.
    """
    reader = BitReader(frame[:16])
    try:
        if reader.u(2) != 2:  # frame_marker
            return None
        profile = reader.u(1) | (reader.u(1) << 1)
        if profile == 3:
            reader.skip(1)
        if reader.flag() or reader.u(1) != 0:  # show_existing_frame / not a keyframe
            return None
        reader.skip(2)  # show_frame, error_resilient_mode
        if reader.u(24) != _SYNC_CODE:
            return None
        if profile >= 2:
            reader.skip(1)  # ten_or_twelve_bit
        if reader.u(3) != _CS_RGB:
            reader.skip(1)  # color_range
            if profile in (1, 3):
                reader.skip(3)  # subsampling_x, subsampling_y, reserved
        elif profile in (1, 3):
            reader.skip(1)
        return reader.u(16) + 1, reader.u(16) + 1
    except MediaFormatError:
        return None


def with_keyframe_size(config: CodecConfig, frame: bytes) -> CodecConfig | None:
    """The config completed with the picture size, when it lacks one and this frame has it."""
    if config.codec != Codec.VP9 or config.width:
        return None
    size = keyframe_size(frame)
    if size is None:
        return None
    return replace(config, width=size[0], height=size[1])


def codec_string(record: bytes) -> str:
    """RFC 6381 codecs string ``vp09.PP.LL.DD``."""
    c = parse_vpcc(record)
    return f"vp09.{c.profile:02d}.{c.level:02d}.{c.bit_depth:02d}"
