"""AV1: the av1C configuration record and the sequence header OBU inside it.

Enhanced RTMP and fMP4 both carry av1C; the picture size and frame rate live in the
sequence header OBU it embeds, which is parsed only as far as ``max_frame_*``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .bits import BitReader
from .errors import MediaFormatError
from .frame import Codec, CodecConfig, TrackKind

OBU_SEQUENCE_HEADER = 1
OBU_TEMPORAL_DELIMITER = 2
_MAX_LEB128_BYTES = 8


@dataclass(frozen=True, slots=True)
class Av1Config:
    """AV1CodecConfigurationRecord fields (plus sizes from its sequence header, if any)."""

    profile: int
    level: int
    tier: int
    bit_depth: int
    monochrome: bool
    chroma_subsampling_x: int
    chroma_subsampling_y: int
    config_obus: bytes
    width: int = 0
    height: int = 0
    fps: float | None = None


def read_leb128(data: bytes, pos: int) -> tuple[int, int]:
    """Decode a leb128 value at ``pos``; returns (value, position after it)."""
    value = 0
    for i in range(_MAX_LEB128_BYTES):
        if pos + i >= len(data):
            raise MediaFormatError("truncated leb128")
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos + i + 1
    raise MediaFormatError("leb128 longer than 8 bytes")


def iter_obus(data: bytes) -> list[tuple[int, bytes]]:
    """(obu_type, payload) of each OBU in a low-overhead bitstream."""
    obus: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        header = data[pos]
        if header & 0x80:
            raise MediaFormatError("OBU forbidden bit set")
        pos += 2 if header & 0x04 else 1
        if header & 0x02:
            size, pos = read_leb128(data, pos)
        else:
            size = len(data) - pos
        if pos + size > len(data):
            raise MediaFormatError("OBU larger than its buffer")
        obus.append(((header >> 3) & 0x0F, data[pos : pos + size]))
        pos += size
    return obus


def _timing_info(r: BitReader) -> float | None:
    units, scale = r.u(32), r.u(32)
    ticks = r.uvlc() + 1 if r.flag() else 0  # equal_picture_interval
    if units == 0 or scale == 0 or ticks == 0:
        return None
    return scale / (units * ticks)


def _skip_operating_points(r: BitReader, decoder_model: bool, delay_bits: int) -> None:
    display_delay = r.flag()  # initial_display_delay_present_flag
    for _ in range(r.u(5) + 1):  # operating_points_cnt_minus_1
        r.skip(12)  # operating_point_idc
        if r.u(5) > 7:  # seq_level_idx
            r.skip(1)  # seq_tier
        if decoder_model and r.flag():  # decoder_model_present_for_this_op
            r.skip(2 * delay_bits + 1)
        if display_delay and r.flag():
            r.skip(4)


def parse_sequence_header(payload: bytes) -> tuple[int, int, float | None]:
    """(max width, max height, fps or None) from a sequence header OBU payload."""
    r = BitReader(payload)
    r.skip(4)  # seq_profile, still_picture
    fps = None
    if r.flag():  # reduced_still_picture_header
        r.skip(5)
    else:
        decoder_model, delay_bits = False, 0
        if r.flag():  # timing_info_present_flag
            fps = _timing_info(r)
            decoder_model = r.flag()
            if decoder_model:
                delay_bits = r.u(5) + 1
                r.skip(32 + 5 + 5)
        _skip_operating_points(r, decoder_model, delay_bits)
    width_bits, height_bits = r.u(4) + 1, r.u(4) + 1
    return r.u(width_bits) + 1, r.u(height_bits) + 1, fps


def parse_av1c(data: bytes) -> Av1Config:
    """Parse an av1C record; its sequence header OBU, when present, gives size and fps."""
    if len(data) < 4:
        raise MediaFormatError("av1C record too short")
    if data[0] != 0x81:
        raise MediaFormatError("av1C marker/version is not 1")
    b1, b2 = data[1], data[2]
    high, twelve = bool(b2 & 0x40), bool(b2 & 0x20)
    width = height = 0
    fps = None
    for obu_type, payload in iter_obus(data[4:]):
        if obu_type == OBU_SEQUENCE_HEADER:
            width, height, fps = parse_sequence_header(payload)
            break
    return Av1Config(
        profile=b1 >> 5,
        level=b1 & 0x1F,
        tier=b2 >> 7,
        bit_depth=12 if twelve else 10 if high else 8,
        monochrome=bool(b2 & 0x10),
        chroma_subsampling_x=(b2 >> 3) & 1,
        chroma_subsampling_y=(b2 >> 2) & 1,
        config_obus=data[4:],
        width=width,
        height=height,
        fps=fps,
    )


def config_from_av1c(record: bytes) -> CodecConfig:
    """CodecConfig of an AV1 track from its av1C record."""
    av1c = parse_av1c(record)
    return CodecConfig(
        track=TrackKind.VIDEO,
        codec=Codec.AV1,
        extradata=bytes(record),
        width=av1c.width,
        height=av1c.height,
        profile=av1c.profile,
        level=av1c.level,
        fps=av1c.fps,
    )


def codec_string(record: bytes) -> str:
    """RFC 6381 / AV1-ISOBMFF codecs string ``av01.P.LLT.DD``."""
    c = parse_av1c(record)
    return f"av01.{c.profile}.{c.level:02d}{'H' if c.tier else 'M'}.{c.bit_depth:02d}"
