"""This process as a node of the installation: its row, its heartbeat, its claims.

Several nodes (processes on one machine, or machines) share one PostgreSQL; the
database is the only coordinator. A node announces its public URLs and renews its
lease every third of ``node.lease_seconds``; ``GET /v1/regions`` lists the regions
that have a live node. On a shared database a stream's publisher is claimed in the
database (``ClaimRepo.take``), so a key publishes on one node at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from datetime import UTC, datetime

from control_api.settings import Settings
from control_api.store import Store
from control_api.store.nodes import NodeInfo
from control_api.urls import Endpoints
from server.ingest.ports import PublisherClaims, SoleNode
from server.tasks import BackgroundTasks

log = logging.getLogger("relaycast.nodes")


class NodeClaims:
    """``PublisherClaims`` over the database: the claim is a row the primary key
    keeps unique, renewed with the node's heartbeat."""

    def __init__(self, store: Store, node: str, lease_seconds: float) -> None:
        self._store = store
        self._node = node
        self._lease = lease_seconds
        self._held: dict[str, str] = {}
        self._tasks = BackgroundTasks(log, "could not release a stream claim")

    async def take(self, stream_id: str) -> bool:
        token = secrets.token_hex(8)
        taken = await self._store.claims.take(
            stream_id, self._node, token, datetime.now(UTC), self._lease
        )
        if taken:
            self._held[stream_id] = token
        return taken

    def release(self, stream_id: str) -> None:
        token = self._held.pop(stream_id, None)
        if token is not None:
            self._tasks.spawn(self._store.claims.release(stream_id, token))

    async def close(self) -> None:
        """Pending releases are dropped: leaving the installation deletes every claim."""
        await self._tasks.close()


class ThisNode:
    def __init__(self, settings: Settings, store: Store, endpoints: Endpoints) -> None:
        self.name = settings.node.resolved_name()
        self.region = settings.node_region
        self.lease = settings.node.lease_seconds
        self._store = store
        self._endpoints = endpoints
        self._rtmp = settings.rtmp.enabled
        self._srt = settings.srt.enabled
        self.started = datetime.now(UTC)
        self.claims: PublisherClaims = (
            NodeClaims(store, self.name, self.lease) if store.shared else SoleNode()
        )
        self._task: asyncio.Task[None] | None = None

    def info(self) -> NodeInfo:
        """Read at every beat: the ports are known once the listeners are bound."""
        e = self._endpoints
        return NodeInfo(
            name=self.name,
            region=self.region,
            http_url=e.http_base,
            rtmp_url=e.rtmp_url if self._rtmp else None,
            srt_url=e.srt_url if self._srt else None,
        )

    async def beat(self) -> None:
        await self._store.nodes.heartbeat(self.info(), self.started, datetime.now(UTC), self.lease)

    async def start(self) -> None:
        """Announce the node now (a failure stops start-up), then keep its lease."""
        await self.beat()
        log.info("node %s in region %s joined (lease %.0fs)", self.name, self.region, self.lease)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                await self.beat()
            except Exception:  # the next beat tries again, inside the lease
                log.exception("node %s: heartbeat failed", self.name)

    async def stop(self) -> None:
        """Leave at once: other nodes need not wait for the lease to lapse."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if isinstance(self.claims, NodeClaims):
            await self.claims.close()
        try:
            await self._store.nodes.leave(self.name)
        except Exception:  # the lease lapses on its own
            log.exception("node %s: could not leave the installation", self.name)
