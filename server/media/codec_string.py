"""RFC 6381 ``CODECS`` strings for HLS multivariant playlists, from a CodecConfig.

Players pick (or refuse) a rendition by this string before fetching a byte, so it is
derived from the exact configuration record rather than from guessed defaults.
"""

from __future__ import annotations

from . import av1, h265, vp9
from .errors import MediaFormatError
from .frame import Codec, CodecConfig


def _avc1(record: bytes) -> str:
    if len(record) < 4:
        raise MediaFormatError("avcC record too short")
    return f"avc1.{record[1]:02x}{record[2]:02x}{record[3]:02x}"


def _reverse32(value: int) -> int:
    return int(f"{value:032b}"[::-1], 2)


def _hvc1(record: bytes) -> str:
    """``hvc1.[A-C]P.COMPAT.TL.C1.C2...`` per ISO/IEC 14496-15 annex E."""
    c = h265.parse_hvcc(record)
    space = ("", "A", "B", "C")[c.profile_space]
    constraint_bytes = c.constraint_flags.to_bytes(6, "big").rstrip(b"\x00")
    parts = [
        "hvc1",
        f"{space}{c.profile_idc}",
        f"{_reverse32(c.compatibility_flags):x}",
        f"{'H' if c.tier else 'L'}{c.level_idc}",
    ]
    parts += [f"{b:02X}" for b in constraint_bytes]
    return ".".join(parts)


def rfc6381_codec(config: CodecConfig) -> str:
    """The CODECS entry for one track (e.g. ``avc1.64001f``, ``mp4a.40.2``, ``opus``)."""
    codec = config.codec
    if codec == Codec.H264:
        return _avc1(config.extradata)
    if codec == Codec.H265:
        return _hvc1(config.extradata)
    if codec == Codec.AV1:
        return av1.codec_string(config.extradata)
    if codec == Codec.VP9:
        return vp9.codec_string(config.extradata)
    if codec == Codec.AAC:
        return f"mp4a.40.{config.profile or 2}"
    if codec == Codec.OPUS:
        return "opus"
    raise ValueError(f"no RFC 6381 codec string known for {codec!r}")


def codecs_attribute(*configs: CodecConfig | None) -> str:
    """Comma-joined CODECS value for a rendition (video first, missing tracks skipped)."""
    return ",".join(rfc6381_codec(c) for c in configs if c is not None)
