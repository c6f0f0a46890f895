"""A lossy UDP relay for SRT tests: one caller <-> one listener, on 127.0.0.1.

It forwards datagrams both ways and drops a share of the caller's *data* packets
(first transmissions and retransmissions alike; control packets always pass), with a
seeded random generator so a run is repeatable. With ``drop_originals_from`` = N it
drops instead the first transmission of every data packet from the N-th on (a lost
tail: only retransmissions get through). A thread with ``select``: it must
not share the event loop of the server under test, or the "network" would stall
whenever the server is busy.
"""

from __future__ import annotations

import random
import select
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class RelayStats:
    forwarded: int = 0
    returned: int = 0
    dropped: int = 0
    data_packets: int = 0


@dataclass
class LossyRelay:
    target: tuple[str, int]
    loss: float = 0.03
    seed: int = 5
    drop_originals_from: int | None = None
    stats: RelayStats = field(default_factory=RelayStats)

    def __post_init__(self) -> None:
        self._front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._front.bind(("127.0.0.1", 0))
        self._back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._back.connect(self.target)
        self._random = random.Random(self.seed)
        self._client: tuple[str, int] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lossy-relay", daemon=True)

    @property
    def port(self) -> int:
        return int(self._front.getsockname()[1])

    def __enter__(self) -> LossyRelay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._front.close()
        self._back.close()

    def _run(self) -> None:
        front, back = self._front, self._back
        while not self._stop.is_set():
            ready, _, _ = select.select([front, back], [], [], 0.1)
            if front in ready:
                data, addr = front.recvfrom(65536)
                self._client = addr
                self._from_caller(data)
            if back in ready:
                try:
                    data = back.recv(65536)
                except ConnectionRefusedError:
                    continue
                if self._client is not None:
                    front.sendto(data, self._client)
                    self.stats.returned += 1

    def _from_caller(self, data: bytes) -> None:
        if data and not data[0] & 0x80:  # data packet: the F bit is clear
            self.stats.data_packets += 1
            if self._drops(data):
                self.stats.dropped += 1
                return
        try:
            self._back.send(data)
        except ConnectionRefusedError:
            return
        self.stats.forwarded += 1

    def _drops(self, data: bytes) -> bool:
        tail = self.drop_originals_from
        if tail is None:
            return self._random.random() < self.loss
        retransmitted = len(data) > 4 and bool(data[4] & 0x04)  # the R bit (brief 3.1)
        return self.stats.data_packets > tail and not retransmitted
