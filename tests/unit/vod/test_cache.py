"""The VOD caches stay within their bound and drop the least recently used first."""

from __future__ import annotations

from server.vod.service import _Lru


def test_lru_keeps_total_weight_under_capacity() -> None:
    cache = _Lru(100)
    cache.put("a", b"a", 40)
    cache.put("b", b"b", 40)
    assert cache.get("a") == b"a"  # a is now the most recent
    cache.put("c", b"c", 40)
    assert cache.get("b") is None and cache.get("a") == b"a" and cache.get("c") == b"c"
    assert cache.weight == 80 and len(cache) == 2


def test_lru_refuses_what_can_never_fit_and_replaces_in_place() -> None:
    cache = _Lru(100)
    cache.put("huge", b"x", 101)
    assert cache.get("huge") is None and cache.weight == 0
    cache.put("a", b"1", 30)
    cache.put("a", b"2", 50)
    assert cache.get("a") == b"2" and cache.weight == 50


def test_lru_also_bounds_the_number_of_entries() -> None:
    cache = _Lru(1_000_000, max_items=2)
    for key in "abc":
        cache.put(key, key.encode(), 10)
    assert cache.get("a") is None and len(cache) == 2 and cache.weight == 20
