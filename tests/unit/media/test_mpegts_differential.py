"""Differential fuzzing: the compiled MPEG-TS demuxer against its pure-Python source.

Real H.264/AAC transport streams (muxed by our TsMuxer), mutated (bytes overwritten,
packets dropped or duplicated, garbage inserted, the tail cut) and fed in random
chunkings with discontinuities between chunks, go through one demuxer of each
implementation. Every call must return equal items (Frame exists once per twin, so
frames compare by class name and fields), raise the same ``MediaFormatError``, and
leave equal statistics and announced tracks; any other exception fails the test.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import accel
from server.media import mpegts_demux as default_demux
from server.media.errors import MediaFormatError
from server.media.frame import CodecConfig
from server.media.mpegts import TsMuxer
from tests.accel_twins import pure_twins

from .avsource import has_encoder, media

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def pure() -> dict[str, ModuleType]:
    if not accel.is_compiled(default_demux):
        pytest.skip("no compiled build to compare with (pip install -e . with a compiler)")
    return pure_twins()


@functools.cache
def _stream(codec: str) -> bytes:
    if not has_encoder(codec):
        pytest.skip(f"no {codec} encoder")
    m = media(seconds=1, video=codec)
    muxer = TsMuxer(m.configs)
    offset = -min(f.dts for f in m.frames)
    return b"".join(muxer.mux(f, offset) for f in m.frames)


def _comparable(item: object) -> object:
    if isinstance(item, CodecConfig):
        return item
    assert dataclasses.is_dataclass(item) and not isinstance(item, type)
    return (type(item).__name__, dataclasses.astuple(item))


def _run(module: ModuleType, chunks: list[tuple[bytes, bool]]) -> list[Any]:
    """Everything a demuxer of ``module`` says about ``chunks`` (data, discontinuity
    after it), call by call."""
    demuxer = module.TsDemuxer(max_garbage=4096, max_pes_bytes=64 << 10)
    seen: list[Any] = []
    for data, gap in chunks:
        try:
            seen.append([_comparable(i) for i in demuxer.feed(data)])
        except MediaFormatError as exc:
            seen.append(("error", str(exc)))
            break
        seen.append(demuxer.tracks)
        if gap:
            demuxer.discontinuity()
    else:
        seen.append([_comparable(i) for i in demuxer.flush()])
    seen.append(dataclasses.astuple(demuxer.stats))
    return seen


def _mutate(data: bytes, seed: int, edits: int) -> bytes:
    rng = random.Random(seed)
    out = bytearray(data)
    for _ in range(edits):
        what = rng.randrange(6)
        pos = rng.randrange(len(out)) if out else 0
        if what == 0:  # a byte overwritten (headers included)
            if out:
                out[pos] = rng.randrange(256)
        elif what == 1:  # a packet lost
            start = pos - pos % 188
            del out[start : start + 188]
        elif what == 2:  # a packet duplicated
            start = pos - pos % 188
            out[start:start] = out[start : start + 188]
        elif what == 3:  # garbage between packets
            start = pos - pos % 188
            out[start:start] = rng.randbytes(rng.randrange(1, 300))
        elif what == 4:  # a header byte of a packet (PID, flags, counter) changed
            start = pos - pos % 188
            if start + 3 < len(out):
                out[start + rng.randrange(1, 4)] ^= 1 << rng.randrange(8)
        else:  # the tail cut
            del out[pos:]
    return bytes(out)


def _chunks(data: bytes, seed: int, gaps: bool) -> list[tuple[bytes, bool]]:
    rng = random.Random(seed)
    out = []
    pos = 0
    while pos < len(data):
        size = rng.choice((188, 1316, 1316 * 4, 1316 * 16, rng.randrange(1, 3000)))
        out.append((data[pos : pos + size], gaps and rng.random() < 0.05))
        pos += size
    return out


@FUZZ
@given(
    st.sampled_from(["h264", "h265"]),
    st.integers(0, 2**32),
    st.integers(0, 12),
    st.booleans(),
)
def test_mutated_streams(
    pure: dict[str, ModuleType], codec: str, seed: int, edits: int, gaps: bool
) -> None:
    source = _stream("libx264" if codec == "h264" else "libx265")
    chunks = _chunks(_mutate(source[: 188 * 400], seed, edits), seed, gaps)
    expected = _run(pure["server.media.mpegts_demux"], chunks)
    assert _run(default_demux, chunks) == expected


@FUZZ
@given(st.lists(st.binary(max_size=800), max_size=8))
def test_random_bytes(pure: dict[str, ModuleType], blobs: list[bytes]) -> None:
    chunks = [(b"\x47" + blob, False) for blob in blobs]
    assert _run(default_demux, chunks) == _run(pure["server.media.mpegts_demux"], chunks)


def test_the_whole_stream_in_srt_payloads(pure: dict[str, ModuleType]) -> None:
    stream = _stream("libx264")
    chunks = [(stream[i : i + 1316], False) for i in range(0, len(stream), 1316)]
    expected = _run(pure["server.media.mpegts_demux"], chunks)
    assert sum(len(call) for call in expected if isinstance(call, list)) > 30
    assert _run(default_demux, chunks) == expected


def test_the_compiled_module_is_the_one_compared(pure: dict[str, ModuleType]) -> None:
    assert accel.is_compiled(default_demux)
    assert not accel.is_compiled(pure["server.media.mpegts_demux"])
