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
import json
import logging
import secrets
import zlib
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp
from sqlalchemy.engine import make_url

from control_api.settings import Settings
from control_api.store import Store
from control_api.store.models import LiveStream, Node
from control_api.store.nodes import NodeInfo
from control_api.urls import Endpoints, node_endpoints
from server.ingest.manager import IngestManager
from server.ingest.ports import PublisherClaims, SoleNode
from server.ingest.sessions import OpenSession
from server.tasks import BackgroundTasks

log = logging.getLogger("relaycast.nodes")

CHANNEL = "relaycast_nodes"
"""NOTIFY channel of the node-to-node commands: ``{"node", "stream", "action"}``
(``stop``, ``rotate``, ``yield``)."""
DISCONNECTS = {"stop": (True, "stream stopped"), "rotate": (False, "stream key rotated")}
"""What each command does to the encoder: end the session?, and the logged reason
(fixed text: a payload never writes a log line)."""
STOP_WAIT = 2.0
"""How long a stop asked of another node waits for that node to end the session."""
YIELD_WAIT, YIELD_POLL = 1.0, 0.1
"""How long a publisher arriving here waits for the node holding its stream to give
way (its publisher silent or gone), and how often the claim is tried meanwhile."""


class NodeClaims:
    """``PublisherClaims`` over the database: the claim is a row the primary key
    keeps unique, renewed with the node's heartbeat."""

    def __init__(
        self,
        store: Store,
        node: str,
        lease_seconds: float,
        ask: Callable[[str, str], Awaitable[None]] | None = None,
    ) -> None:
        """``ask(holder, stream_id)`` asks the node holding a stream to give it up if
        its publisher is away or silent (see ``ThisNode``)."""
        self._store = store
        self._node = node
        self._lease = lease_seconds
        self._ask = ask
        self._held: dict[str, str] = {}
        self._tasks = BackgroundTasks(log, "could not release a stream claim")

    async def take(self, stream_id: str) -> bool:
        """Claim the stream; if another node holds it, ask that node to give way and
        try again for ``YIELD_WAIT`` (a silent or departed publisher is taken over)."""
        token = secrets.token_hex(8)
        if await self._try(stream_id, token):
            return True
        holder = await self._store.claims.holder(stream_id, datetime.now(UTC))
        if self._ask is None or holder is None or holder == self._node:
            return await self._try(stream_id, token)
        await self._ask(holder, stream_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + YIELD_WAIT
        while loop.time() < deadline:
            await asyncio.sleep(YIELD_POLL)
            if await self._try(stream_id, token):
                return True
        return False

    async def _try(self, stream_id: str, token: str) -> bool:
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

    async def elsewhere(self, stream_ids: Collection[str]) -> set[str]:
        return await self._store.claims.held_elsewhere(stream_ids, self._node, datetime.now(UTC))

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
        self._ask_timeout = settings.node.proxy_connect_timeout
        self.started = datetime.now(UTC)
        self.claims: PublisherClaims = (
            NodeClaims(store, self.name, self.lease, self._ask_to_yield)
            if store.shared
            else SoleNode()
        )
        self._task: asyncio.Task[None] | None = None
        self.ingest: IngestManager | None = None
        self.renewed = 0.0
        """The loop time of the last renewed lease."""
        self._listener: Any = None  # asyncpg.Connection, on a shared database
        self._commands = BackgroundTasks(log, "a command from another node failed")
        self.upkeep: list[Callable[[], Awaitable[object]]] = []
        """Run after each sweep on a shared database: jobs a dead node left are taken
        over (``control_api.jobs``); a failing one does not keep the others from running."""
        self.internal_url: str | None = None
        """Where other nodes fetch the HLS of the streams this node carries (set once its
        internal listener is bound; none on a database of its own)."""

    def info(self) -> NodeInfo:
        """Read at every beat: the ports are known once the listeners are bound."""
        e = self._endpoints
        return NodeInfo(
            name=self.name,
            region=self.region,
            http_url=e.http_base,
            rtmp_url=e.rtmp_url if self._rtmp else None,
            srt_url=e.srt_url if self._srt else None,
            rtmps_url=e.rtmps_url,
            internal_url=self.internal_url,
        )

    async def owner_url(self, edge_id: str) -> str | None:
        """``OwnerLookup`` for the HLS proxy: the other live node holding the claim of
        the stream with this edge id."""
        if not self._store.shared:
            return None
        return await self._store.nodes.owner_url(edge_id, self.name, datetime.now(UTC))

    async def ask_owner(self, edge_id: str, what: str, stream_id: str) -> dict[str, Any] | None:
        """``what`` (``health``, ``viewership``) of a stream whose encoder another node
        holds, from that node's internal listener (``GET /{what}/{streamId}``); None
        when no other node holds it or it does not answer within
        ``node.proxy_connect_timeout``."""
        owner = await self.owner_url(edge_id)
        if owner is None:
            return None
        url = f"{owner.rstrip('/')}/{what}/{quote(stream_id, safe='')}"
        timeout = aiohttp.ClientTimeout(total=self._ask_timeout)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as got:
                if got.status != 200:
                    return None
                doc = await got.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("node %s: no %s of %s from %s: %r", self.name, what, stream_id, owner, exc)
            return None
        return doc if isinstance(doc, dict) else None

    async def beat(self) -> None:
        """Renew the lease; claims exist only on a shared database (``NodeClaims``,
        ``control_api.jobs``), so only there are they renewed with it."""
        now = datetime.now(UTC)
        shared = self._store.shared
        await self._store.nodes.heartbeat(self.info(), self.started, now, self.lease, shared)

    async def start(self, ingest: IngestManager | None = None) -> None:
        """Announce the node now (a failure stops start-up), then keep its lease; on a
        shared database, listen for commands to the encoders ``ingest`` holds."""
        self.ingest = ingest
        if ingest is not None and self._store.shared:
            await self._listen()
        await self.beat()
        log.info("node %s in region %s joined (lease %.0fs)", self.name, self.region, self.lease)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self.renewed = loop.time()
        while True:
            await asyncio.sleep(self.lease / 3)
            await self.tick(loop.time())

    async def tick(self, now: float) -> None:
        """One heartbeat (``now`` on the loop's clock): renew, sweep, keep listening."""
        try:
            await self.beat()
            self.renewed = now
            if self._store.shared:
                await self._sweep()
                await self._upkeep()
            if self._listener is not None and self._listener.is_closed():
                log.warning("node %s: command connection lost; listening again", self.name)
                await self._listen()
        except Exception:  # the next beat tries again, inside the lease
            log.exception("node %s: heartbeat failed", self.name)
            if self._store.shared and now - self.renewed >= self.lease:
                await self._fence()

    async def _fence(self) -> None:
        """The lease lapsed: other nodes now end this node's sessions and accept its
        keys, so its encoders are let go rather than carried twice."""
        if self.ingest is None or not self.ingest.publishing():
            return
        log.error("node %s: lease lost; disconnecting its encoders", self.name)
        for stream_id in self.ingest.publishing():
            try:
                await self.ingest.disconnect(
                    stream_id, end_session=True, reason="node lost its lease"
                )
            except Exception:  # the session's end cannot be written: a live node sweeps it
                log.warning(
                    "node %s: session of stream %s left to the others", self.name, stream_id
                )

    async def _sweep(self) -> None:
        sessions, streams = await self._store.end_dead_nodes_sessions(self.name)
        if sessions:
            log.warning(
                "node %s: closed %d session(s) of dead nodes, ended %d stream(s)",
                self.name,
                sessions,
                streams,
            )

    async def _upkeep(self) -> None:
        for job in self.upkeep:
            try:
                await job()
            except Exception:
                log.exception("node %s: taking over a dead node's jobs failed", self.name)

    async def _listen(self) -> None:
        """A connection of its own: LISTEN holds it for the node's life, off the pool."""
        import asyncpg

        url = make_url(self._store.engine.url).set(drivername="postgresql")
        self._listener = await asyncpg.connect(url.render_as_string(hide_password=False))
        await self._listener.add_listener(CHANNEL, self._heard)

    def _heard(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            command = json.loads(payload)
            node, stream, action = command["node"], command["stream"], command["action"]
        except (ValueError, KeyError, TypeError):
            log.warning("node %s: ignored a malformed command", self.name)
            return
        if node != self.name or self.ingest is None:
            return
        if action == "yield":
            if self.ingest.gives_way(str(stream)):
                self._commands.spawn(self._give_way(str(stream)))
        elif action in DISCONNECTS:
            self._commands.spawn(disconnect(self.ingest, None, str(stream), action))

    async def _ask_to_yield(self, holder: str, stream_id: str) -> None:
        command = {"node": holder, "stream": stream_id, "action": "yield"}
        await self._store.nodes.notify(CHANNEL, json.dumps(command))

    async def _give_way(self, stream_id: str) -> None:
        """A publisher of this stream arrived on another node while ours is silent or
        away. Away inside its reconnect window: the session is handed over (that node
        continues it; if none does within the window, it ends here). Otherwise the
        session ends here (its claim goes with it) and that node starts a new one."""
        assert self.ingest is not None
        handed = await self.ingest.hand_over(stream_id, self._save_handed_over)
        if handed is None:
            await self.ingest.disconnect(
                stream_id, end_session=True, reason="taken over on another node"
            )
            return
        session, left = handed
        await asyncio.sleep(left)
        if await self._store.end_unclaimed_session(session.session_id, self.name):
            log.info("node %s: handed-over session %s not continued", self.name, session.session_id)

    async def _save_handed_over(self, session: OpenSession) -> None:
        await self._store.hand_over_session(session.session_id, session.bytes_in, session.last_seen)

    async def endpoints_for(self, streams: Sequence[LiveStream]) -> dict[str, Endpoints]:
        """Per stream id, the endpoints its URLs name when another node should: a stream
        of a region this node is not in goes to a live node of that region (the same
        one for a stream every time). One process's database: none."""
        if not self._store.shared or all(s.region == self.region for s in streams):
            return {}
        by_region: dict[str, list[Node]] = {}
        for node in await self._store.nodes.live(datetime.now(UTC)):
            by_region.setdefault(node.region, []).append(node)
        out = {}
        for stream in streams:
            nodes = by_region.get(stream.region)
            if stream.region == self.region or not nodes:
                continue
            n = nodes[zlib.crc32(stream.id.encode()) % len(nodes)]
            out[stream.id] = node_endpoints(
                self._endpoints, n.http_url, n.rtmp_url, n.srt_url, n.rtmps_url
            )
        return out

    async def disconnect_elsewhere(self, stream_id: str, action: str) -> bool:
        """Tell the node holding the stream's encoder (if another) to ``action`` it;
        a stop waits (up to ``STOP_WAIT``) until that node has ended the session."""
        if not self._store.shared:
            return False
        holder = await self._store.claims.holder(stream_id, datetime.now(UTC))
        if holder is None or holder == self.name:
            return False
        command = {"node": holder, "stream": stream_id, "action": action}
        await self._store.nodes.notify(CHANNEL, json.dumps(command))
        if DISCONNECTS[action][0]:
            deadline = asyncio.get_running_loop().time() + STOP_WAIT
            while asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
                if await self._store.claims.holder(stream_id, datetime.now(UTC)) is None:
                    break
        return True

    async def stop(self) -> None:
        """Leave at once: other nodes need not wait for the lease to lapse."""
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close(timeout=2)
            self._listener = None
        await self._commands.close()
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


async def disconnect(
    ingest: IngestManager, node: ThisNode | None, stream_id: str, action: str
) -> None:
    """Stop or forced key rotation: the encoder goes, on this node or the one holding it."""
    end, reason = DISCONNECTS[action]
    await ingest.disconnect(stream_id, end_session=end, reason=reason)
    if node is not None:
        await node.disconnect_elsewhere(stream_id, action)
