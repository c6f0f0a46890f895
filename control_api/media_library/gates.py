"""One writer per upload at a time; a newcomer takes over from the request it finds.

A client that lost its connection comes back with a new PATCH while the server may
still be reading the old, dead one (the loss is noticed only when TCP says so). So a
request that finds the upload busy closes the holder's connection: the holder then
keeps what it received, records it and lets go, and the newcomer continues from
there. Waiting is bounded; a holder that does not let go in time means 423.

With ``jobs`` on a shared database (nodes sharing the data directory, ``--workers``)
the gate is also a job claim (``upload:<id>``), so a PATCH on another node, or a
restarting node's recovery, does not write the upload at the same time; the other
node's request is not closed from here, so it finishes and the newcomer waits for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from control_api.jobs import Jobs

CLAIM_POLL = 0.1
"""How often a request waits for the upload to be let go by another node."""


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


def upload_job(upload_id: str) -> str:
    return f"upload:{upload_id}"


class UploadGates:
    def __init__(self, jobs: Jobs | None = None) -> None:
        self._gates: dict[str, _Gate] = {}
        self._jobs = jobs

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
                async with self._claimed(upload_id, wait):
                    yield
            finally:
                gate.holder = None
                gate.lock.release()
        finally:
            gate.users -= 1
            if gate.users == 0:
                del self._gates[upload_id]

    @asynccontextmanager
    async def _claimed(self, upload_id: str, wait: float) -> AsyncIterator[None]:
        if self._jobs is None or not self._jobs.shared:
            yield
            return
        job = upload_job(upload_id)
        deadline = asyncio.get_running_loop().time() + wait
        while not await self._jobs.take(job):
            if asyncio.get_running_loop().time() >= deadline:
                raise UploadBusy(upload_id)
            await asyncio.sleep(CLAIM_POLL)
        try:
            yield
        finally:
            await self._jobs.release(job)

    def busy(self, upload_id: str) -> bool:
        return upload_id in self._gates

    def __len__(self) -> int:
        return len(self._gates)
