from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.media.bits import BitReader, BitWriter, remove_emulation_prevention
from server.media.errors import MediaFormatError


def test_fixed_fields_and_exp_golomb() -> None:
    # 101 | ue(0)=1 | ue(3)=00100 | se(-2)=00101 | se(1)=010
    r = BitReader(bytes([0b10110010, 0b00010101, 0b00000000]))
    assert r.u(3) == 0b101
    assert r.ue() == 0
    assert r.ue() == 3
    assert r.se() == -2
    assert r.se() == 1
    assert r.position == 17


@given(st.lists(st.tuples(st.sampled_from(["u", "ue", "se"]), st.integers(0, 2**20)), max_size=40))
def test_writer_reader_round_trip(fields: list[tuple[str, int]]) -> None:
    w = BitWriter()
    expected: list[int] = []
    for kind, value in fields:
        if kind == "u":
            w.u(21, value)
            expected.append(value)
        elif kind == "ue":
            w.ue(value)
            expected.append(value)
        else:
            w.se(value - 2**19)
            expected.append(value - 2**19)
    r = BitReader(w.to_bytes())
    got = [r.u(21) if k == "u" else r.ue() if k == "ue" else r.se() for k, _ in fields]
    assert got == expected


def test_running_past_the_end_is_a_format_error() -> None:
    r = BitReader(b"\x00")
    with pytest.raises(MediaFormatError):
        r.ue()
    with pytest.raises(MediaFormatError):
        BitReader(b"\xff").u(9)
    with pytest.raises(MediaFormatError):
        BitReader(b"\x00\x00\x00\x00\x00\x01").ue()  # 47 leading zeros: too long


def test_uvlc_saturates() -> None:
    assert BitReader(b"\x00\x00\x00\x00\x80").uvlc() == 2**32 - 1
    assert BitReader(b"\x40").uvlc() == 1


def test_emulation_prevention_removal() -> None:
    assert remove_emulation_prevention(b"\x00\x00\x03\x01") == b"\x00\x00\x01"
    assert remove_emulation_prevention(b"\x00\x00\x03\x00\x00\x03") == b"\x00\x00\x00\x00"
    assert remove_emulation_prevention(b"\x00\x00\x03\x03") == b"\x00\x00\x03"
    assert remove_emulation_prevention(b"\x01\x00\x03") == b"\x01\x00\x03"
