"""One entry point from (codec, configuration record) to a parsed CodecConfig.

FLV sequence headers, fMP4 sample entries and the bus all speak in records; this keeps
the codec dispatch in one place instead of in every demuxer.
"""

from __future__ import annotations

from collections.abc import Callable

from . import aac, av1, h264, h265, opus, vp9
from .frame import Codec, CodecConfig

# Keyed by Codec members; plain strings hash and compare equal to them (StrEnum).
_PARSERS: dict[str, Callable[[bytes], CodecConfig]] = {
    Codec.H264: h264.config_from_avcc,
    Codec.H265: h265.config_from_hvcc,
    Codec.AV1: av1.config_from_av1c,
    Codec.VP9: vp9.config_from_vpcc,
    Codec.AAC: aac.config_from_asc,
    Codec.OPUS: opus.config_from_opus_head,
}

SUPPORTED_CODECS: frozenset[str] = frozenset(_PARSERS)


def config_from_record(codec: str, record: bytes) -> CodecConfig:
    """Parse ``record`` (avcC, hvcC, av1C, vpcC, AudioSpecificConfig or OpusHead).

    Raises ``MediaFormatError`` for a malformed record and ``ValueError`` for a codec
    this server does not handle (a programming error: callers check SUPPORTED_CODECS).
    """
    parser = _PARSERS.get(codec)
    if parser is None:
        raise ValueError(f"unsupported codec {codec!r}")
    return parser(record)
