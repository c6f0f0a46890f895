"""In-memory SRT endpoints: a deterministic lossy link and a discrete-event driver
with a fake clock (no sockets, no real time)."""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from server.protocols.srt import (
    ConnectionRequest,
    Event,
    ListenerEvent,
    SrtConnection,
    SrtListener,
)
from server.protocols.srt.packet import HEADER

ADDR = ("192.0.2.10", 40000)


def seeded(seed: int) -> Callable[[int], bytes]:
    """A deterministic stand-in for os.urandom."""
    rng = random.Random(seed)
    return lambda n: rng.randbytes(n)


@dataclass
class Link:
    """One direction of a network path: delay + jitter (so reordering), random loss
    and duplication from a seeded RNG, plus ``drop`` for packets that must always be
    lost (e.g. every copy of one data sequence number)."""

    rng: random.Random
    delay: float = 0.010
    jitter: float = 0.0
    loss: float = 0.0
    duplicate: float = 0.0
    drop: Callable[[bytes], bool] | None = None
    up: bool = True
    _heap: list[tuple[float, int, bytes]] = field(default_factory=list)
    _n: int = 0
    carried: int = 0
    lost: int = 0

    def push(self, datagram: bytes, now: float) -> None:
        if not self.up or (self.drop is not None and self.drop(datagram)):
            self.lost += 1
            return
        if self.rng.random() < self.loss:
            self.lost += 1
            return
        copies = 2 if self.rng.random() < self.duplicate else 1
        for _ in range(copies):
            arrival = now + self.delay + self.rng.random() * self.jitter
            self._n += 1
            heapq.heappush(self._heap, (arrival, self._n, datagram))
            self.carried += 1

    def next_time(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[bytes]:
        out = []
        while self._heap and self._heap[0][0] <= now:
            out.append(heapq.heappop(self._heap)[2])
        return out


def data_seq(datagram: bytes) -> int | None:
    """Sequence number of a data datagram (None for control packets)."""
    word0 = HEADER.unpack_from(datagram)[0]
    return None if word0 & 0x80000000 else word0


Decide = Callable[[SrtListener, ConnectionRequest, float], SrtConnection | None]


def accept_with(passphrase: str | None = None, latency_ms: int | None = None) -> Decide:
    def decide(lst: SrtListener, req: ConnectionRequest, now: float) -> SrtConnection | None:
        return lst.accept(req, now, passphrase=passphrase, latency_ms=latency_ms)

    return decide


class Sim:
    """Caller <-> listener over two :class:`Link`s, driven by a fake clock."""

    def __init__(
        self,
        caller: SrtConnection,
        listener: SrtListener,
        *,
        decide: Decide | None = None,
        up: Link | None = None,
        down: Link | None = None,
        addr: tuple[str, int] = ADDR,
        now: float = 0.0,
    ) -> None:
        self.caller = caller
        self.listener = listener
        self.decide = decide or accept_with()
        self.up = up or Link(random.Random(1))
        self.down = down or Link(random.Random(2))
        self.addr = addr
        self.now = now
        self.server: SrtConnection | None = None
        self.caller_events: list[tuple[float, Event]] = []
        self.server_events: list[tuple[float, Event]] = []
        self.listener_events: list[ListenerEvent] = []
        self.source: Callable[[float], None] | None = None
        self.source_next: float | None = None

    def _flush(self) -> None:
        now = self.now
        for d in self.caller.datagrams_to_send():
            self.up.push(d, now)
        for d, _addr in self.listener.datagrams_to_send():
            self.down.push(d, now)
        for ev in self.listener.events():
            self.listener_events.append(ev)
            if isinstance(ev, ConnectionRequest):
                conn = self.decide(self.listener, ev, now)
                if conn is not None:
                    self.server = conn
                for d, _addr in self.listener.datagrams_to_send():
                    self.down.push(d, now)
        if self.server is not None:
            for d in self.server.datagrams_to_send():
                self.down.push(d, now)
            self.server_events.extend((now, e) for e in self.server.events())
        self.caller_events.extend((now, e) for e in self.caller.events())

    def _timers(self) -> list[float]:
        times = [
            self.caller.next_timer(),
            self.listener.next_timer(),
            self.up.next_time(),
            self.down.next_time(),
            self.source_next,
        ]
        if self.server is not None:
            times.append(self.server.next_timer())
        return [t for t in times if t is not None]

    def step(self, until: float) -> bool:
        """Advance to the next event (not beyond ``until``); False when idle."""
        self._flush()
        times = self._timers()
        if not times or min(times) > until:
            self.now = until
            return False
        self.now = max(self.now, min(times))
        now = self.now
        for d in self.up.pop_due(now):
            self.listener.receive(d, self.addr, now)
        for d in self.down.pop_due(now):
            self.caller.receive(d, now)
        for conn in (self.caller, self.server):
            if conn is not None:
                t = conn.next_timer()
                if t is not None and t <= now:
                    conn.handle_timer(now)
        t = self.listener.next_timer()
        if t is not None and t <= now:
            self.listener.handle_timer(now)
        if self.source is not None and self.source_next is not None and self.source_next <= now:
            self.source(now)
        self._flush()
        return True

    def run(self, until: float, max_steps: int = 2_000_000) -> None:
        steps = 0
        while self.now < until and self.step(until):
            steps += 1
            assert steps < max_steps, "simulation does not advance"

    def run_until(self, cond: Callable[[], bool], limit: float) -> None:
        while not cond():
            assert self.now < limit, "condition not reached in time"
            if not self.step(limit):
                break

    def caller_of(self, kind: type) -> list:
        return [e for _t, e in self.caller_events if isinstance(e, kind)]

    def server_of(self, kind: type) -> list:
        return [e for _t, e in self.server_events if isinstance(e, kind)]
