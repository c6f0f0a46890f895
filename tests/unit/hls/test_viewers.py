"""Concurrent viewer counting over a sliding window."""

from __future__ import annotations

from server.hls.packager import Viewers


def test_limit_window_and_returning_viewers() -> None:
    viewers = Viewers(limit=2, window=30)
    assert viewers.admit("a", 0) and viewers.admit("b", 1)
    assert not viewers.admit("c", 2)
    assert viewers.admit("a", 20)  # a known viewer keeps its place
    assert viewers.admit("c", 40)  # b left (silent for > 30 s)
    assert len(viewers) == 2


def test_no_limit() -> None:
    viewers = Viewers(limit=None)
    assert all(viewers.admit(str(i), 0) for i in range(1000))
