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


def test_players_on_other_protocols_share_the_limit() -> None:
    players = [1]
    viewers = Viewers(limit=2, others=lambda: len(players))
    assert viewers.admit("a", 0)
    assert not viewers.admit("b", 0)
    players.clear()
    assert viewers.admit("b", 0)


def test_views_and_watched_seconds_outlive_the_window() -> None:
    viewers = Viewers(limit=None, window=30)
    viewers.admit("a", 0)
    viewers.admit("a", 20)
    viewers.admit("b", 10)
    assert viewers.views == 2
    assert viewers.watched_seconds(25) == 20.0  # a: 0..20, b: 10..10
    assert viewers.watched_seconds(100) == 20.0  # both gone; their time is kept
    assert viewers.active(100) == 0
