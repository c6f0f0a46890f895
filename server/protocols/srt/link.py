"""What the live receiver and sender share with their connection: the way out
(:class:`Link`) and the round-trip-time estimate (:class:`Rtt`)."""

from __future__ import annotations

from typing import Protocol

#: "No deadline" in the microsecond timer arithmetic (avoids Optional on hot paths).
NEVER = 1 << 62


class Link(Protocol):
    """The connection as seen by its receiver and sender."""

    peer_socket_id: int

    def stamp(self, now_us: int) -> int:
        """Timestamp field for a packet sent now: microseconds since our start."""
        ...

    def queue(self, datagram: bytes, now_us: int) -> None:
        """Hand one datagram to the output (and note that we sent something)."""
        ...


class Rtt:
    """Smoothed round-trip time and variance in microseconds (brief 1.3).

    The first real sample replaces the 100 ms / 50 ms start values, as libsrt
    (>= 1.4.4) does; otherwise a loopback link would keep a 100 ms RTT, and with it
    a 150 ms NAK period, for the first second.
    """

    __slots__ = ("rtt", "sampled", "var")

    def __init__(self) -> None:
        self.rtt = 100_000
        self.var = 50_000
        self.sampled = False

    def sample(self, value: int) -> None:
        """One ACK -> ACKACK measurement (receiver side)."""
        if value < 0:
            return
        if not self.sampled:
            self.rtt, self.var, self.sampled = value, value // 2, True
            return
        self.var = (3 * self.var + abs(self.rtt - value)) // 4
        self.rtt = (7 * self.rtt + value) // 8

    def adopt(self, rtt: int, var: int) -> None:
        """The peer's estimate carried in a full/small ACK (sender side)."""
        if 0 < rtt < 60_000_000:
            self.rtt, self.var, self.sampled = rtt, min(var, 60_000_000), True
