"""A fragment reaches the file as its pieces (one writev), never joined in memory first."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from server.bus.items import ConfigChange, EndOfStream
from server.media.frame import TIMEBASE, TrackKind
from server.record.disk import OsFile
from server.record.muxer import NewFile, RecordMuxer
from tests.unit.media.avsource import decode_all, media


def test_os_file_writes_every_piece_in_order_past_the_iov_limit(tmp_path: Path) -> None:
    pieces = [bytes([n % 251]) * (n % 7) for n in range(3000)]  # empty ones too
    file = OsFile(tmp_path / "f")
    file.write(pieces[:2500])
    file.write(pieces[2500:])
    file.close()
    assert (tmp_path / "f").read_bytes() == b"".join(pieces)


def test_fragments_carry_the_frames_own_payloads_and_decode() -> None:
    source = media(seconds=3)
    muxer = RecordMuxer(TIMEBASE, 0)
    items = [*(ConfigChange(c) for c in source.configs), *source.frames, EndOfStream()]
    out = [o for item in items for o in muxer.feed(item)]
    fragments = [o for o in out if not isinstance(o, NewFile)]
    payloads = {id(f.payload) for f in source.frames}
    assert len(fragments) >= 2
    assert all(id(piece) in payloads for fragment in fragments for piece in fragment[1:])
    init = next(o.init for o in out if isinstance(o, NewFile))
    got = decode_all(init + b"".join(b"".join(f) for f in fragments))
    videos = [f for f in source.frames if f.track is TrackKind.VIDEO]
    assert got["errors"] == [] and got["decoded"]["video"] == len(videos)


def test_os_file_finishes_short_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.writev

    def short(fd: int, buffers: Sequence[bytes | memoryview]) -> int:
        return real(fd, [memoryview(b"".join(buffers))[:7]])  # a disk taking 7 bytes a call

    monkeypatch.setattr(os, "writev", short)
    pieces = [b"moof-and-mdat", b"", b"a" * 20, b"bc", b"d" * 5]
    file = OsFile(tmp_path / "f")
    file.write(pieces)
    file.close()
    assert (tmp_path / "f").read_bytes() == b"".join(pieces)
