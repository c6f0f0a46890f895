"""Differential fuzzing: the compiled MPEG-TS demuxer against its source.

Real ffmpeg-muxed MPEG-TS (H.264 + AAC) with bytes flipped, packets dropped or
duplicated, and cut into random chunks (as SRT payloads arrive, and as the ingest
batches them), goes through one demuxer of each implementation. Both must give equal
frames, configs, tracks and stats, or raise the same ``MediaFormatError``; any other
exception fails the test.
"""

from __future__ import annotations

import dataclasses
import functools
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import accel
from server.media import mpegts_demux as default_demux
from server.media.errors import MediaFormatError
from tests.accel_twins import pure_twins

from .test_mpegts import _ffmpeg_ts

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PACKET = 188


@functools.cache
def _stream() -> bytes:
    return _ffmpeg_ts(1)[: 400 * PACKET]


@pytest.fixture(scope="module")
def pure() -> ModuleType:
    if not accel.is_compiled(default_demux):
        pytest.skip("no compiled build to compare with (pip install -e . with a compiler)")
    return pure_twins()["server.media.mpegts_demux"]


def _run(module: ModuleType, chunks: list[bytes]) -> list[Any]:
    demuxer = module.TsDemuxer()
    seen: list[Any] = []
    for chunk in chunks:
        try:
            seen.append(demuxer.feed(chunk))
        except MediaFormatError as exc:
            seen.append(("error", str(exc)))
            break
        seen.append(sorted(track.value for track in demuxer.tracks))
    demuxer.discontinuity()
    seen.append(dataclasses.astuple(demuxer.stats))
    return seen


def _cut(data: bytes, sizes: list[int]) -> list[bytes]:
    chunks, at = [], 0
    for size in sizes:
        if at >= len(data):
            break
        chunks.append(data[at : at + size])
        at += size
    if at < len(data):
        chunks.append(data[at:])
    return chunks


_EDIT = st.tuples(
    st.sampled_from(["flip", "drop", "dup"]), st.integers(0, 10**6), st.integers(1, 255)
)


@FUZZ
@given(
    st.lists(_EDIT, max_size=8),
    st.lists(st.sampled_from([1, 7, 188, 1316, 4 * 1316, 32 * 1316]), min_size=1, max_size=40),
)
def test_damaged_streams_demux_alike(
    pure: ModuleType, edits: list[tuple[str, int, int]], sizes: list[int]
) -> None:
    data = bytearray(_stream())
    for kind, position, value in edits:
        if kind == "flip":
            data[position % len(data)] ^= value
            continue
        start = (position % (len(data) // PACKET)) * PACKET
        packet = bytes(data[start : start + PACKET])
        if kind == "drop":
            del data[start : start + PACKET]
        else:
            data[start:start] = packet
    chunks = _cut(bytes(data), sizes)
    assert _run(default_demux, chunks) == _run(pure, chunks)


@FUZZ
@given(st.binary(max_size=3 * PACKET), st.integers(0, 255))
def test_garbage_demuxes_alike(pure: ModuleType, data: bytes, sync: int) -> None:
    chunks = [bytes([0x47]) + data, bytes([sync]) * 200 + data]
    assert _run(default_demux, chunks) == _run(pure, chunks)


def test_the_compiled_module_is_the_one_compared(pure: ModuleType) -> None:
    assert accel.is_compiled(default_demux) and not accel.is_compiled(pure)
    assert pure.TsDemuxer is not default_demux.TsDemuxer
