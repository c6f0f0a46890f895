"""Which node runs a background job: claims in the shared database (issue 22).

Each process takes a job before it works on it and lets it go when done; the node's
heartbeat keeps its claims alive, so when a node dies its jobs lapse with its lease
and another node's upkeep (``ThisNode.upkeep``) takes them over. On SQLite there is
one process: every job is its own.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from control_api.settings import Settings
from control_api.store import Store


class Jobs:
    def __init__(self, store: Store, node: str, lease_seconds: float) -> None:
        self.store = store
        self.node = node
        self.lease = lease_seconds
        self.run = secrets.token_hex(8)
        """This process among the node's runs: a restart takes its previous run's jobs."""

    @classmethod
    def of(cls, settings: Settings, store: Store) -> Jobs:
        return cls(store, settings.node.resolved_name(), settings.node.lease_seconds)

    @property
    def shared(self) -> bool:
        return self.store.shared

    async def take(self, job: str) -> bool:
        """True: this process runs ``job`` now; False: another live process does."""
        if not self.store.shared:
            return True
        return await self.store.jobs.take(job, self.node, self.run, datetime.now(UTC), self.lease)

    async def lead(self, job: str) -> bool:
        """A singleton (a periodic sweep): True while this process leads it. Asked again
        each round, it stays with its leader until that node dies."""
        if not self.store.shared:
            return True
        return await self.store.jobs.take(
            job, self.node, self.run, datetime.now(UTC), self.lease, again=True
        )

    async def release(self, job: str) -> None:
        if self.store.shared:
            await self.store.jobs.release(job, self.run)

    async def lapsed(self, prefix: str) -> list[str]:
        """Jobs ``<prefix>…`` a dead node held (none on one process's database)."""
        if not self.store.shared:
            return []
        return await self.store.jobs.lapsed(prefix, datetime.now(UTC))
