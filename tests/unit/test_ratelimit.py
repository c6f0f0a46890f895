"""Fixed-window rate limiter."""

from __future__ import annotations

from control_api.ratelimit import RateLimiter


def test_window_budget_and_reset() -> None:
    rl = RateLimiter(3)
    verdicts = [rl.hit("a", 100.0 + i) for i in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert [v.remaining for v in verdicts] == [2, 1, 0, 0]
    assert verdicts[3].reset_seconds == 57
    assert verdicts[3].headers()["Retry-After"] == "57"
    assert "Retry-After" not in verdicts[0].headers()
    assert rl.hit("b", 103.0).allowed
    assert rl.hit("a", 160.0).allowed and rl.hit("a", 160.0).remaining == 1


def test_memory_is_bounded_under_a_flood_of_callers() -> None:
    rl = RateLimiter(5, max_callers=100)
    for i in range(10_000):
        rl.hit(f"addr:{i}", 1.0)
    assert len(rl) <= 100


def test_peek_does_not_spend() -> None:
    rl = RateLimiter(2)
    assert rl.peek("a", 0.0).remaining == 2
    rl.hit("a", 1.0)
    assert rl.peek("a", 2.0).remaining == 1 and rl.peek("a", 2.0).remaining == 1
    assert rl.peek("a", 62.0).remaining == 2
