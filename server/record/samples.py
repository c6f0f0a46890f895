"""Counting the samples of finished fMP4 fragments, for the frames a recording lost.

Copied parts are dropped whole when the disk falls behind; what they held is counted
like the frames a bus reader drops, from the ``trun`` boxes of each ``moof``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

_CONTAINERS = {b"moof", b"traf"}


def _boxes(data: memoryview) -> Iterator[tuple[bytes, memoryview]]:
    position = 0
    while position + 8 <= len(data):
        size = int.from_bytes(data[position : position + 4], "big")
        kind = bytes(data[position + 4 : position + 8])
        if size < 8 or position + size > len(data):
            return
        yield kind, data[position + 8 : position + size]
        position += size


def _count(data: memoryview) -> int:
    total = 0
    for kind, body in _boxes(data):
        if kind in _CONTAINERS:
            total += _count(body)
        elif kind == b"trun" and len(body) >= 8:
            total += int.from_bytes(body[4:8], "big")
    return total


def sample_count(pieces: Iterable[bytes | memoryview]) -> int:
    """Samples (frames) in fragments given as whole top-level boxes."""
    return sum(_count(memoryview(piece)) for piece in pieces)
