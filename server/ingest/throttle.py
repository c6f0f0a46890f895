"""RefusalThrottle: repeated refusals from one address are answered ever more slowly.

A refusal costs the server a key lookup and costs a guesser nothing, so an address
that keeps presenting unknown keys waits longer for each answer (as failed API logins
spend their address's budget). Only the refusal is delayed: the same address with a
valid key is answered at once. No clock and no I/O: ``now`` is passed in, the
protocol adapter does the waiting. Memory is bounded by ``max_addresses``.
"""

from __future__ import annotations

from dataclasses import dataclass

FREE_REFUSALS = 3
"""Refusals answered at once (a mistyped key is retried a few times by hand)."""
FIRST_DELAY = 0.25
FORGET_AFTER = 60.0
"""Seconds without a refusal after which an address starts over."""


@dataclass(slots=True)
class _Record:
    refusals: int
    last: float


class RefusalThrottle:
    def __init__(self, max_delay: float, max_addresses: int) -> None:
        if max_addresses < 1:
            raise ValueError("max_addresses must be at least 1")
        self.max_delay = max_delay
        self.max_addresses = max_addresses
        self._records: dict[str, _Record] = {}

    def __len__(self) -> int:
        return len(self._records)

    def refused(self, address: str, now: float) -> float:
        """Count a refusal for ``address``; returns the seconds to wait before answering."""
        record = self._records.pop(address, None)  # re-inserted: newest last
        if record is None or now - record.last >= FORGET_AFTER:
            self._make_room(now)
            record = _Record(0, now)
        record.refusals += 1
        record.last = now
        self._records[address] = record
        over = record.refusals - FREE_REFUSALS
        if over <= 0:
            return 0.0
        return min(self.max_delay, FIRST_DELAY * 2.0 ** min(over - 1, 32))

    def _make_room(self, now: float) -> None:
        """Forget stale addresses, then the least recently refused, to stay within
        ``max_addresses``. Records are kept in order of their last refusal, so both
        are found at the front."""
        records = self._records
        while records:
            oldest = next(iter(records))
            if len(records) < self.max_addresses and now - records[oldest].last < FORGET_AFTER:
                return
            del records[oldest]
