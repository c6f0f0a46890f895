from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.media import nal
from server.media.errors import MediaFormatError

# Against the compiled modules and their pure-Python twins (tests/accel_twins.py).
pytestmark = pytest.mark.usefixtures("implementation")

NALS = [b"\x67\x42\x00\x1e\xab", b"\x68\xce\x3c\x80", b"\x65\x88\x84\x00\x10"]


def test_split_annexb_mixed_start_codes_and_trailing_zeros() -> None:
    stream = b"\x00\x00\x00\x01" + NALS[0] + b"\x00\x00\x01" + NALS[1] + b"\x00\x00"
    stream += b"\x00\x00\x00\x01" + NALS[2]
    assert nal.split_annexb(stream) == NALS


def test_annexb_length_prefixed_round_trip() -> None:
    annexb = b"".join(nal.START_CODE + n for n in NALS)
    avcc = nal.annexb_to_length_prefixed(annexb)
    assert avcc == b"".join(len(n).to_bytes(4, "big") + n for n in NALS)
    assert nal.length_prefixed_to_annexb(avcc) == annexb
    assert nal.split_length_prefixed(avcc) == NALS
    assert nal.nals_to_length_prefixed(NALS) == avcc


def test_long_zero_run_before_start_code_is_trimmed() -> None:
    stream = b"\x00\x00\x01" + NALS[0] + b"\x00" * 1000 + b"\x00\x00\x01" + NALS[1]
    assert nal.split_annexb(stream) == NALS[:2]


def test_no_start_code() -> None:
    with pytest.raises(MediaFormatError):
        nal.split_annexb(b"\x12\x34\x56")


def test_length_size_normalization() -> None:
    two = b"".join(len(n).to_bytes(2, "big") + n for n in NALS)
    four = nal.nals_to_length_prefixed(NALS)
    assert nal.normalize_length_size(two, 2) == four
    assert nal.normalize_length_size(four, 4) is four
    one = b"".join(len(n).to_bytes(1, "big") + n for n in NALS)
    assert nal.normalize_length_size(one, 1) == four


@pytest.mark.parametrize("bad", [b"\x00\x00\x00\x09abc", b"\x00\x00", b"\x00\x00\x00\x01"])
def test_bad_length_prefixes(bad: bytes) -> None:
    with pytest.raises(MediaFormatError):
        nal.split_length_prefixed(bad)


@given(st.binary(max_size=200), st.sampled_from([1, 2, 3, 4]))
def test_only_format_errors_escape(data: bytes, size: int) -> None:
    for call in (
        lambda: nal.split_annexb(data),
        lambda: nal.split_length_prefixed(data, size),
        lambda: nal.normalize_length_size(data, size),
        lambda: nal.length_prefixed_to_annexb(data),
    ):
        with contextlib.suppress(MediaFormatError):
            call()


@given(st.lists(st.binary(min_size=1, max_size=50), min_size=1, max_size=8))
def test_round_trip_property(nals: list[bytes]) -> None:
    nals = [bytes(x or 1 for x in n) for n in nals]  # no zero bytes: no start code emulation
    avcc = nal.nals_to_length_prefixed(nals)
    annexb = nal.length_prefixed_to_annexb(avcc)
    assert nal.split_annexb(annexb) == nals
    assert nal.annexb_to_length_prefixed(annexb) == avcc


def _spans_by_find(data: bytes) -> list[tuple[int, int]]:
    """The straightforward repeated-``bytes.find`` scan ``annexb_nal_spans`` replaced."""
    first = data.find(b"\x00\x00\x01")
    if first < 0:
        raise MediaFormatError("no Annex B start code")
    spans, start = [], first + 3
    while start <= len(data):
        nxt = data.find(b"\x00\x00\x01", start)
        end = len(data) if nxt < 0 else nxt
        trimmed = start + len(data[start:end].rstrip(b"\x00"))
        if trimmed > start:
            spans.append((start, trimmed))
        if nxt < 0:
            break
        start = nxt + 3
    return spans


@given(st.lists(st.sampled_from([b"\x00", b"\x01", b"\x00\x00\x01", b"\x65", b"\x00\x00"])))
def test_nal_spans_match_the_find_scan(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    try:
        expected = _spans_by_find(data)
    except MediaFormatError:
        with pytest.raises(MediaFormatError):
            nal.annexb_nal_spans(data)
        return
    assert nal.annexb_nal_spans(data) == expected
