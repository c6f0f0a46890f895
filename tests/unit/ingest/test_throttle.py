"""RefusalThrottle: delays per address, forgetting, and its bounded memory."""

from __future__ import annotations

from server.ingest.throttle import FORGET_AFTER, RefusalThrottle


def test_the_first_refusals_are_free_then_the_delay_doubles_up_to_the_cap() -> None:
    throttle = RefusalThrottle(max_delay=1.5, max_addresses=10)
    delays = [throttle.refused("192.0.2.1", float(n)) for n in range(8)]
    assert delays == [0.0, 0.0, 0.0, 0.25, 0.5, 1.0, 1.5, 1.5]


def test_addresses_are_throttled_separately() -> None:
    throttle = RefusalThrottle(max_delay=5.0, max_addresses=10)
    for _ in range(5):
        throttle.refused("192.0.2.1", 0.0)
    assert throttle.refused("192.0.2.2", 0.0) == 0.0


def test_an_address_quiet_long_enough_starts_over() -> None:
    throttle = RefusalThrottle(max_delay=5.0, max_addresses=10)
    for _ in range(6):
        throttle.refused("192.0.2.1", 0.0)
    assert throttle.refused("192.0.2.1", FORGET_AFTER - 1) > 0
    assert throttle.refused("192.0.2.1", 2 * FORGET_AFTER) == 0.0


def test_memory_is_bounded_by_forgetting_the_least_recently_refused() -> None:
    throttle = RefusalThrottle(max_delay=5.0, max_addresses=100)
    for _ in range(5):
        throttle.refused("192.0.2.1", 0.0)
    for n in range(1000):
        throttle.refused(f"198.51.100.{n}", 1.0)
        assert len(throttle) <= 100
    assert throttle.refused("192.0.2.1", 2.0) == 0.0  # forgotten under the flood


def test_a_zero_cap_never_delays() -> None:
    throttle = RefusalThrottle(max_delay=0.0, max_addresses=10)
    assert {throttle.refused("192.0.2.1", 0.0) for _ in range(10)} == {0.0}
