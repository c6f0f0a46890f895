"""Throttles the ``lastUsedAt`` write of API keys: at most one a minute per key.

A write per call is not worth it, so the app remembers when it last wrote each key.
A memory older than the interval decides nothing (the next call writes anyway) and
is dropped; under a flood of distinct keys the oldest go first, which costs no more
than one early write. Entries are kept in the order they were written, so both are
a walk from the front that stops at the first entry still needed.
"""

from __future__ import annotations

TOUCH_EVERY = 60.0
MAX_KEYS = 100_000


class LastUsed:
    def __init__(self, every: float = TOUCH_EVERY, max_keys: int = MAX_KEYS) -> None:
        self.every = every
        self.max_keys = max_keys
        self._written: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._written)

    def due(self, key_id: str, now: float) -> bool:
        """True when ``key_id``'s lastUsedAt should be written now (and it is noted as written)."""
        last = self._written.get(key_id)
        if last is not None and now - last < self.every:
            return False
        self._written.pop(key_id, None)  # re-inserted last: the order stays the write order
        self._forget(now)
        self._written[key_id] = now
        return True

    def _forget(self, now: float) -> None:
        written = self._written
        while written:
            oldest = next(iter(written))
            if now - written[oldest] < self.every and len(written) < self.max_keys:
                return
            del written[oldest]
