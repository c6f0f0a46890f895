"""Playback tokens: bound to one edge id, expiring, unforgeable."""

from __future__ import annotations

from server.hls import tokens

KEY = b"k" * 32


def test_valid_until_expiry_for_its_edge_only() -> None:
    token = tokens.mint(KEY, "lse_1", 1000)
    assert tokens.verify(KEY, "lse_1", token, 999.0)
    assert not tokens.verify(KEY, "lse_1", token, 1000.0)
    assert not tokens.verify(KEY, "lse_2", token, 999.0)
    assert not tokens.verify(b"x" * 32, "lse_1", token, 999.0)


def test_garbage_and_tampering_are_refused() -> None:
    token = tokens.mint(KEY, "lse_1", 1000)
    forged = "2000" + token[4:]
    for bad in ("", ".", "abc", "1000.", forged, token + "x", "9" * 40 + ".x", "1000.ü"):
        assert not tokens.verify(KEY, "lse_1", bad, 0.0), bad


def test_expiry_in_non_ascii_digits_is_refused_not_a_crash() -> None:
    token = tokens.mint(KEY, "lse_1", 1000)
    signature = token.partition(".")[2]
    for expires in ("\u00b2", "\u0661\u0660\u0660\u0660"):  # int(): raises; 1000
        assert not tokens.verify(KEY, "lse_1", f"{expires}.{signature}", 0.0)
