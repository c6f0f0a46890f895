"""VP9: the VP codec configuration record (``vpcC``) used by Enhanced RTMP and fMP4.

FFmpeg writes it with the 4-byte FullBox version/flags in front (as in the MP4 box body);
the bare 8-byte form also exists, so both are accepted.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

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


def codec_string(record: bytes) -> str:
    """RFC 6381 codecs string ``vp09.PP.LL.DD``."""
    c = parse_vpcc(record)
    return f"vp09.{c.profile:02d}.{c.level:02d}.{c.bit_depth:02d}"
