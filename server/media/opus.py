"""Opus: the OpusHead ID header (FLV sequence start, Ogg) and its MP4 twin ``dOps``.

Enhanced RTMP carries OpusHead (RFC 7845 5.1, little-endian); fMP4 wants the ``dOps``
box body (big-endian, no magic). Both hold the same few fields, so one dataclass serves
both and outputs convert without re-deriving anything.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .errors import MediaFormatError
from .frame import Codec, CodecConfig, TrackKind

OPUS_HEAD_MAGIC = b"OpusHead"
OPUS_SAMPLE_RATE = 48_000
"""Opus always decodes at 48 kHz; ``input_sample_rate`` is informational only."""

_HEAD = struct.Struct("<8sBBHIhB")
_DOPS = struct.Struct(">BBHIhB")


@dataclass(frozen=True, slots=True)
class OpusHeader:
    """Fields shared by OpusHead and dOps."""

    channels: int
    pre_skip: int
    input_sample_rate: int = OPUS_SAMPLE_RATE
    output_gain: int = 0
    mapping_family: int = 0
    stream_count: int = 1
    coupled_count: int = 0
    channel_mapping: bytes = b""


def _mapping(data: bytes, pos: int, channels: int, family: int) -> tuple[int, int, bytes]:
    if family == 0:
        if not 1 <= channels <= 2:
            raise MediaFormatError("mapping family 0 allows only 1 or 2 channels")
        return 1, channels - 1, b""
    if len(data) < pos + 2 + channels:
        raise MediaFormatError("truncated Opus channel mapping table")
    return data[pos], data[pos + 1], data[pos + 2 : pos + 2 + channels]


def parse_opus_head(data: bytes) -> OpusHeader:
    """Parse an OpusHead ID header."""
    if len(data) < _HEAD.size or not data.startswith(OPUS_HEAD_MAGIC):
        raise MediaFormatError("not an OpusHead header")
    _, version, channels, pre_skip, rate, gain, family = _HEAD.unpack_from(data)
    if version >> 4 != 0 or channels == 0:
        raise MediaFormatError("unsupported OpusHead version or zero channels")
    streams, coupled, mapping = _mapping(data, _HEAD.size, channels, family)
    return OpusHeader(channels, pre_skip, rate, gain, family, streams, coupled, mapping)


def _pack(layout: struct.Struct, lead: tuple[bytes | int, ...], header: OpusHeader) -> bytes:
    """``lead`` (magic, version) and the shared fields in ``layout``'s byte order, then
    the channel mapping table when the family has one: the same for both forms."""
    fixed = layout.pack(
        *lead,
        header.channels,
        header.pre_skip,
        header.input_sample_rate,
        header.output_gain,
        header.mapping_family,
    )
    if header.mapping_family == 0:
        return fixed
    return fixed + bytes((header.stream_count, header.coupled_count)) + header.channel_mapping


def build_opus_head(header: OpusHeader) -> bytes:
    """Serialize an OpusHead ID header (version 1)."""
    return _pack(_HEAD, (OPUS_HEAD_MAGIC, 1), header)


def parse_dops(data: bytes) -> OpusHeader:
    """Parse the body of an MP4 ``dOps`` box."""
    if len(data) < _DOPS.size:
        raise MediaFormatError("dOps box too short")
    version, channels, pre_skip, rate, gain, family = _DOPS.unpack_from(data)
    if version != 0 or channels == 0:
        raise MediaFormatError("unsupported dOps version or zero channels")
    streams, coupled, mapping = _mapping(data, _DOPS.size, channels, family)
    return OpusHeader(channels, pre_skip, rate, gain, family, streams, coupled, mapping)


def build_dops(header: OpusHeader) -> bytes:
    """Serialize the body of an MP4 ``dOps`` box (version 0)."""
    return _pack(_DOPS, (0,), header)


def config_from_opus_head(data: bytes) -> CodecConfig:
    """CodecConfig of an Opus track; an empty header means plain stereo (E-RTMP rule)."""
    channels = parse_opus_head(data).channels if data else 2
    return CodecConfig(
        track=TrackKind.AUDIO,
        codec=Codec.OPUS,
        extradata=bytes(data),
        sample_rate=OPUS_SAMPLE_RATE,
        channels=channels,
    )
