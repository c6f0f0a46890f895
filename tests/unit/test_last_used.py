"""The lastUsedAt throttle: one write a minute per key, in bounded memory."""

from __future__ import annotations

from control_api.last_used import LastUsed


def test_one_write_per_interval_per_key() -> None:
    last = LastUsed(every=60.0)
    assert last.due("a", 0.0)
    assert not last.due("a", 30.0)
    assert last.due("b", 30.0)
    assert last.due("a", 60.0)
    assert not last.due("a", 119.0)
    assert not last.due("b", 89.0)


def test_memory_is_bounded_under_a_flood_of_keys() -> None:
    last = LastUsed(every=60.0, max_keys=100)
    assert all(last.due(f"key-{i}", 1.0) for i in range(10_000))
    assert len(last) <= 100
    assert not last.due("key-9999", 2.0)  # the newest are the ones kept


def test_entries_older_than_the_interval_are_forgotten() -> None:
    last = LastUsed(every=60.0)
    for i in range(50):
        last.due(f"key-{i}", float(i))
    assert not last.due("key-10", 65.0)  # a check alone keeps the entry
    last.due("late", 65.0)
    assert len(last) == 45  # key-0 … key-5 said nothing any more
    assert last.due("key-0", 65.0)
