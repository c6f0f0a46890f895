"""ByteBudget: one bound on the bytes all connections of a process hold in unfinished
messages.

Per-connection limits alone multiply by the connection count: a thousand peers each
staying just under their own limit would still hold gigabytes. Connections share one
budget and reserve a message's announced length from it when the message starts; a
connection that cannot reserve fails, the others keep what they have.

Each connection's first few bytes are guaranteed (counted, never refused): otherwise
publishers holding the whole budget would keep everyone else from even sending a
``connect``. Those bytes are bounded per connection and by the connection count.
"""

from __future__ import annotations


class ByteBudget:
    """A shared counter of reserved bytes with a ceiling (no I/O, no clock)."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a byte budget must allow at least one byte")
        self.limit = limit
        self.used = 0

    def take(self, size: int, guaranteed: bool = False) -> bool:
        """Reserve ``size`` bytes; False (and nothing reserved) when they do not fit,
        unless ``guaranteed``."""
        if not guaranteed and self.used + size > self.limit:
            return False
        self.used += size
        return True

    def give(self, size: int) -> None:
        """Return bytes reserved with :meth:`take`."""
        self.used -= size
