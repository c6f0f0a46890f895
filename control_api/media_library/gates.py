"""One writer per upload at a time; a newcomer takes over from the request it finds.

A client that lost its connection comes back with a new PATCH while the server may
still be reading the old, dead one (the loss is noticed only when TCP says so). So a
request that finds the upload busy closes the holder's connection: the holder then
keeps what it received, records it and lets go, and the newcomer continues from
there. Waiting is bounded; a holder that does not let go in time means 423.

In-process only: one upload is served by one node (its bytes are on that node's disk).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


class UploadBusy(Exception):
    """Another request held the upload for longer than the wait allows."""


@dataclass
class _Gate:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    holder: asyncio.BaseTransport | None = None
    users: int = 0


def _takes_over(gate: _Gate, transport: asyncio.BaseTransport | None) -> bool:
    """Only a live connection takes over: a request whose own connection is already gone
    (its handler may start late) is the stale one, and must not cut off a live one."""
    if transport is None or transport.is_closing():
        return False
    return gate.lock.locked() and gate.holder is not None and gate.holder is not transport


class UploadGates:
    def __init__(self) -> None:
        self._gates: dict[str, _Gate] = {}

    @asynccontextmanager
    async def hold(
        self, upload_id: str, transport: asyncio.BaseTransport | None, wait: float
    ) -> AsyncIterator[None]:
        gate = self._gates.setdefault(upload_id, _Gate())
        gate.users += 1
        try:
            if _takes_over(gate, transport):
                assert gate.holder is not None
                gate.holder.close()
            try:
                async with asyncio.timeout(wait):
                    await gate.lock.acquire()
            except TimeoutError:
                raise UploadBusy(upload_id) from None
            gate.holder = transport
            try:
                yield
            finally:
                gate.holder = None
                gate.lock.release()
        finally:
            gate.users -= 1
            if gate.users == 0:
                del self._gates[upload_id]

    def busy(self, upload_id: str) -> bool:
        return upload_id in self._gates

    def __len__(self) -> int:
        return len(self._gates)
