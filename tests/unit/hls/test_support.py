"""Resource names and the growing part buffer."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from server.hls import PartBuffer, Resource, ResourceKind, parse_name
from server.hls.names import init_name, part_name, segment_name
from server.settings import HlsSettings


def test_names_round_trip() -> None:
    assert parse_name(segment_name(12, "m4s")) == Resource(ResourceKind.SEGMENT, 12, 0, "m4s")
    assert parse_name(segment_name(3, "ts")) == Resource(ResourceKind.SEGMENT, 3, 0, "ts")
    assert parse_name(part_name(7, 2)) == Resource(ResourceKind.PART, 7, 2, "m4s")
    assert parse_name(init_name(1)) == Resource(ResourceKind.INIT, 1, 0, "mp4")
    assert parse_name("master.m3u8") == Resource(ResourceKind.MASTER)
    assert parse_name("media.m3u8") == Resource(ResourceKind.MEDIA)
    for bad in (
        "seg.m4s",
        "seg1.mp4",
        "part1.m4s",
        "../seg1.ts",
        "seg1.ts?x",
        "seg" + "9" * 13 + ".ts",
        "seg\u0661.m4s",  # Arabic-Indic one: only ASCII digits name resources
        "seg\u00b2.m4s",
        "part1.\u0661.m4s",
        "init\uff11.mp4",
    ):
        assert parse_name(bad) is None


def _read(buffer: PartBuffer, offset: int = 0) -> bytes:
    return b"".join(bytes(piece) for piece in buffer.pieces_from(offset))


def test_part_buffer_grows_then_is_shared() -> None:
    buffer = PartBuffer()
    assert buffer.pieces_from() == [] and buffer.size == 0 and not buffer.complete
    buffer.append(b"abc")
    buffer.append(b"")
    buffer.append(b"def")
    assert _read(buffer, 2) == b"cdef" and bytes(buffer.data) == b"abcdef"
    assert buffer.pieces_from(6) == []
    buffer.finish()
    with pytest.raises(RuntimeError):
        buffer.append(b"x")
    parent = memoryview(b"xxabcdefyy")
    buffer.share(parent[2:8])
    assert bytes(buffer.data) == b"abcdef" and _read(buffer, 3) == b"def"
    with pytest.raises(ValueError):
        buffer.share(parent[:3])


def test_growing_part_is_read_by_chunk_reference_never_joined() -> None:
    buffer = PartBuffer()
    chunks = [bytes([n]) * (n + 1) for n in range(8)]
    sent = 0
    for chunk in chunks:
        buffer.append(chunk)
        (new,) = buffer.pieces_from(sent)
        assert new is chunk  # the appended object itself: no copy, no join
        sent += len(new)
    assert [bytes(p) for p in buffer.pieces_from(2)] == [b"\x01", *chunks[2:]]
    assert _read(buffer, 0) == b"".join(chunks) and _read(buffer, 35) == b"\x07"


def test_hls_settings_defaults_and_validation() -> None:
    s = HlsSettings()
    assert (s.segment_format, s.target_duration, s.part_target, s.window_segments) == (
        "fmp4",
        2.0,
        0.5,
        6,
    )
    with pytest.raises(ValidationError, match="half"):
        HlsSettings(target_duration=1.0, part_target=0.6)
    with pytest.raises(ValidationError):
        HlsSettings(segment_format="mkv")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        HlsSettings(window_segments=2)
