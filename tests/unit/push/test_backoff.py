"""Reconnect delays: 1 s doubling to a 60 s cap, jittered, reset after a stable minute."""

from __future__ import annotations

import itertools

import pytest

from server.push.backoff import Backoff


def test_doubling_to_the_cap_without_jitter() -> None:
    b = Backoff(jitter=0.0)
    delays = [b.failed(now=float(i)) for i in range(9)]
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999])
def test_jitter_only_shortens_and_delays_never_shrink(draw: float) -> None:
    b = Backoff(rng=lambda: draw)
    delays = [b.failed(now=0.0) for _ in range(10)]
    bases = [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]
    for delay, base in zip(delays, bases, strict=True):
        assert base * 0.75 < delay <= base
    assert all(later >= earlier for earlier, later in itertools.pairwise(delays))


def test_jitter_spreads_destinations_apart() -> None:
    draws = iter([0.1, 0.9])
    a, b = Backoff(rng=lambda: next(draws)), Backoff(rng=lambda: 0.0)
    assert a.failed(0.0) != b.failed(0.0)


def test_a_stable_minute_resets_the_sequence() -> None:
    b = Backoff(jitter=0.0)
    for _ in range(5):
        b.failed(0.0)
    b.connected(100.0)
    assert b.failed(159.0) == 32  # up 59 s: not stable yet, keeps growing
    b.connected(200.0)
    assert b.failed(260.0) == 1  # up a full minute: start over
    assert b.failed(261.0) == 2


def test_reset_and_bounds() -> None:
    b = Backoff(jitter=0.0)
    for _ in range(100):
        b.failed(0.0)
    assert b.failed(0.0) == 60
    b.reset()
    assert b.failed(0.0) == 1
    with pytest.raises(ValueError):
        Backoff(initial=0)
    with pytest.raises(ValueError):
        Backoff(initial=10, cap=5)
    with pytest.raises(ValueError):
        Backoff(jitter=1.0)
