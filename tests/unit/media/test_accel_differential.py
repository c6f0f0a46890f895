"""Differential fuzzing: compiled FLV tag parsing and NAL framing against their source.

Random and mutated tag bodies (legacy and Enhanced RTMP, real x264/AAC tags with a
byte flipped) go through one parser of each implementation in sequence, so the NAL
length size learnt from a sequence header carries over as it does in a session. Both
must return equal results or raise the same ``MediaFormatError``; any other exception
fails the test.
"""

from __future__ import annotations

import dataclasses
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import accel
from server.media import flv as default_flv
from server.media import frame as default_frame
from server.media import nal as default_nal
from server.media.errors import MediaFormatError
from server.media.frame import CodecConfig
from tests.accel_twins import pure_twins

from .vectors import encode_flv, iter_flv_tags

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PREFIXES = [
    b"",
    b"\x17\x00\x00\x00\x00\x01",  # AVC sequence header
    b"\x17\x01\x00\x00\x00",  # AVC frame
    b"\x1c\x01\x00\x00\x00",  # legacy HEVC frame
    b"\x90hvc1",
    b"\x91hvc1",
    b"\x93av01",
    b"\x97\x02\x00\x00",  # ModEx
    b"\x96\x00hvc1",  # multitrack
    b"\xaf\x01",
    b"\x9fmp4a",
    b"\x91Opus",
]
_REAL_TAGS = [
    body
    for kind, _, body in iter_flv_tags(
        encode_flv("libx264", 160, 96, 2, "aac", (("preset", "ultrafast"), ("bf", "2")))
    )
    if kind in (8, 9)
][:12]


@pytest.fixture(scope="module")
def pure() -> dict[str, ModuleType]:
    if not accel.is_compiled(default_flv):
        pytest.skip("no compiled build to compare with (pip install -e . with a compiler)")
    return pure_twins()


def _comparable(result: object) -> object:
    """Configs are one shared class; Frame (compiled since issue 20), Ignored and
    EndOfSequence exist once per twin, so they compare by class name and fields (and the
    field values, enum members included, must be equal objects)."""
    if isinstance(result, CodecConfig):
        return result
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return (type(result).__name__, dataclasses.astuple(result))
    return result


def _parse_all(flv: ModuleType, tags: list[tuple[bool, bytes, int]]) -> list[Any]:
    parser = flv.FlvTagParser()
    seen: list[Any] = []
    for video, body, ts in tags:
        try:
            result = parser.video(body, ts) if video else parser.audio(body, ts)
        except MediaFormatError as exc:
            seen.append(("error", str(exc)))
        else:
            seen.append(_comparable(result))
    return seen


_TAG = st.tuples(
    st.booleans(),
    st.builds(lambda p, d: p + d, st.sampled_from(PREFIXES), st.binary(max_size=48)),
    st.integers(0, 2**32 - 1),
)


@FUZZ
@given(st.lists(_TAG, min_size=1, max_size=6))
def test_random_tags(pure: dict[str, ModuleType], tags: list[tuple[bool, bytes, int]]) -> None:
    assert _parse_all(default_flv, tags) == _parse_all(pure["server.media.flv"], tags)


@FUZZ
@given(
    st.lists(
        st.tuples(st.integers(0, len(_REAL_TAGS) - 1), st.integers(0, 10**6), st.integers(0, 255)),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_real_tags(pure: dict[str, ModuleType], edits: list[tuple[int, int, int]]) -> None:
    tags = []
    for index, position, xor in edits:
        body = bytearray(_REAL_TAGS[index][:600])
        body[position % len(body)] ^= xor
        tags.append((index % 2 == 0, bytes(body), position))
        tags.append((index % 2 == 1, bytes(body), position))
    assert _parse_all(default_flv, tags) == _parse_all(pure["server.media.flv"], tags)


def _framing(nal: ModuleType, data: bytes, size: int) -> list[Any]:
    seen: list[Any] = []
    for call in (
        lambda: nal.normalize_length_size(data, size),
        lambda: nal.length_prefixed_spans(data, size),
        lambda: nal.length_prefixed_to_annexb(data, size),
        lambda: nal.annexb_nal_spans(data),
        lambda: nal.annexb_to_length_prefixed(data),
    ):
        try:
            seen.append(call())
        except MediaFormatError as exc:
            seen.append(("error", str(exc)))
    return seen


@FUZZ
@given(st.binary(max_size=64), st.integers(0, 5))
def test_nal_framing(pure: dict[str, ModuleType], data: bytes, size: int) -> None:
    assert _framing(default_nal, data, size) == _framing(pure["server.media.nal"], data, size)


def test_the_compiled_modules_are_the_ones_compared(pure: dict[str, ModuleType]) -> None:
    assert accel.is_compiled(default_flv) and accel.is_compiled(default_nal)
    assert accel.is_compiled(default_frame)
    assert not accel.is_compiled(pure["server.media.flv"])
    assert pure["server.media.flv"].FlvTagParser is not default_flv.FlvTagParser
    # each parser builds its own twin's Frame, so the comparisons above cover it too
    assert pure["server.media.flv"].Frame is pure["server.media.frame"].Frame
    assert pure["server.media.frame"].Frame is not default_frame.Frame
