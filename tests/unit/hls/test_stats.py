"""Playback counters: the blocking-reload histogram and the viewers gauge."""

from __future__ import annotations

from server.hls.packager import Viewers
from server.hls.stats import WAIT_BUCKETS, WaitHistogram


def test_histogram_buckets_are_cumulative_and_end_with_inf() -> None:
    hist = WaitHistogram()
    for seconds in (0.01, 0.05, 0.3, 0.3, 100.0):
        hist.observe(seconds)
    buckets = dict(hist.cumulative())
    assert list(buckets) == [*map(str, WAIT_BUCKETS), "+Inf"]
    assert buckets["0.05"] == 2  # le: an observation equal to a bound is inside it
    assert buckets["0.5"] == 4
    assert buckets["16.0"] == 4
    assert buckets["+Inf"] == 5
    assert abs(hist.total - 100.66) < 1e-9


def test_active_viewers_forget_idle_ones_even_without_a_limit() -> None:
    viewers = Viewers(limit=None, window=30)
    for i in range(50):
        viewers.admit(f"v{i}", now=float(i))
    assert viewers.active(now=49.0) == 31  # v19..v49 were seen in the last 30 s
    assert viewers.active(now=100.0) == 0
    assert len(viewers) == 0  # memory follows the window, not every client ever seen


def test_a_limit_counts_only_current_viewers() -> None:
    viewers = Viewers(limit=2, window=30)
    assert viewers.admit("a", 0.0) and viewers.admit("b", 0.0)
    assert not viewers.admit("c", 10.0)
    assert viewers.admit("c", 31.0)
    assert viewers.active(31.0) == 1
