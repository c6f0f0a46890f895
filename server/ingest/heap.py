"""Give the memory of finished connections back to the operating system (glibc).

Unfinished RTMP messages are held as the pieces that arrived, up to tens of MiB per
connection. Freeing them does not shrink the process: glibc raises its mmap threshold
after a large mmapped block is freed (a joined 16 MiB message is one), so later
pieces come from the heap, and a heap only shrinks from its top. ``malloc_trim``
hands every free page inside it back. It walks the heap, so it runs only after a
connection that held a lot closed, and at most once per ``interval`` seconds.
Elsewhere than on glibc this does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
from collections.abc import Callable

TRIM_AFTER_BYTES = 1024 * 1024
"""A closing connection that held at least this much is worth a trim."""


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


MALLOC_TRIM = _malloc_trim()
"""glibc's ``malloc_trim``, or None elsewhere."""


class HeapTrimmer:
    """One pending trim at a time, for all connections of a listener."""

    def __init__(
        self, interval: float = 1.0, trim: Callable[[int], int] | None = MALLOC_TRIM
    ) -> None:
        self._interval = interval
        self._trim = trim
        self._pending: asyncio.TimerHandle | None = None
        self._last = float("-inf")
        self.trims = 0

    def released(self, held: int) -> None:
        """A connection that held ``held`` bytes of unfinished messages is gone."""
        if held < TRIM_AFTER_BYTES or self._trim is None or self._pending is not None:
            return
        loop = asyncio.get_running_loop()
        delay = self._last + self._interval - loop.time()
        # Soon, not now: the connection's last references go when its callbacks end.
        self._pending = loop.call_later(max(delay, 0.05), self._run, loop)

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        self._pending = None
        self._last = loop.time()
        if self._trim is not None:
            self._trim(0)
            self.trims += 1

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
