"""The retry schedule: doubling from the base, capped, jitter inside the upper half."""

from __future__ import annotations

import pytest

from control_api.webhooks.backoff import retry_delay


@pytest.mark.parametrize(
    ("attempts", "low", "high"),
    [(1, 5.0, 10.0), (2, 10.0, 20.0), (3, 20.0, 40.0), (4, 40.0, 80.0), (9, 1280.0, 2560.0)],
)
def test_doubles_with_each_failure(attempts: int, low: float, high: float) -> None:
    assert retry_delay(attempts, 10.0, 3600.0, 0.0) == low
    assert retry_delay(attempts, 10.0, 3600.0, 1.0) == high


def test_capped_and_never_overflows() -> None:
    assert retry_delay(12, 10.0, 3600.0, 1.0) == 3600.0
    assert retry_delay(10_000, 10.0, 3600.0, 0.5) == 2700.0


def test_jitter_spreads_inside_the_window() -> None:
    delays = [retry_delay(3, 10.0, 3600.0, r / 10) for r in range(10)]
    assert delays == sorted(delays)
    assert len(set(delays)) == 10
    assert all(20.0 <= d < 40.0 for d in delays)


def test_a_day_of_retries_with_the_defaults() -> None:
    """Defaults (10 s base, 1 h cap) give about 30 attempts over 24 hours, not thousands."""
    elapsed, attempts = 0.0, 0
    while elapsed < 24 * 3600:
        attempts += 1
        elapsed += retry_delay(attempts, 10.0, 3600.0, 0.5)
    assert 25 <= attempts <= 40
