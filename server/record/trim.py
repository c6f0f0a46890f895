"""Cutting a fragmented MP4 back to its last whole fragment.

A crash or a failed write can leave the last ``moof``/``mdat`` pair half written;
players and FFmpeg stop (or fail) there. The file is ``ftyp moov (moof mdat)*``, so
walking the top-level box headers finds where the last complete fragment ends.
Blocking, for a worker thread.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

_HEADER = struct.Struct(">I4s")
_LARGE = struct.Struct(">Q")


def whole_length(path: Path) -> int:
    """Bytes of ``path`` up to the end of its last complete fragment (0: no moov)."""
    size = path.stat().st_size
    keep = position = 0
    moov = False
    with path.open("rb") as file:
        while position + _HEADER.size <= size:
            file.seek(position)
            length, kind = _HEADER.unpack(file.read(_HEADER.size))
            if length == 1:
                large = file.read(_LARGE.size)
                length = _LARGE.unpack(large)[0] if len(large) == _LARGE.size else 0
            if length < _HEADER.size or position + length > size:
                break
            position += length
            if kind == b"moov":
                moov = True
                keep = position
            elif kind == b"mdat" and moov:
                keep = position  # a moof is only whole with the mdat after it
    return keep


def trim_to_whole(path: Path) -> int:
    """Truncate ``path`` to its whole fragments; return the bytes cut off."""
    size = path.stat().st_size
    keep = whole_length(path)
    if keep < size:
        os.truncate(path, keep)
    return size - keep
