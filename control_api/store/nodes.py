"""Nodes and their claims on streams: the database is the coordinator (issue 22).

Liveness is a lease: each node renews its row and its claims every third of
``node.lease_seconds``; a row whose lease has run out belongs to a dead node. Times
are the nodes' own clocks (UTC), so nodes must keep them in sync (NTP): a skew of a
second or two is far inside a lease.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from control_api.store.models import JobClaim, LiveStream, Node, StreamClaim, StreamSession


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What a node announces about itself: where encoders and viewers reach it."""

    name: str
    region: str
    http_url: str
    rtmp_url: str | None
    srt_url: str | None
    rtmps_url: str | None = None
    internal_url: str | None = None


def _upsert(dialect: str) -> Any:
    """``INSERT … ON CONFLICT``: both engines have it, in their own dialect module."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


class NodeRepo:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], dialect: str) -> None:
        self._sessions = sessions
        self._insert = _upsert(dialect)

    async def heartbeat(
        self,
        info: NodeInfo,
        started: datetime,
        now: datetime,
        lease: float,
        renew_claims: bool = True,
    ) -> None:
        """Announce the node (again) and renew its lease and its streams' and jobs'
        claims. ``renew_claims=False``: a node that never claims (one process's
        database: ``ThisNode``) skips the two claim updates, two thirds of the cost."""
        expires = now + timedelta(seconds=lease)
        values = {
            "region": info.region,
            "http_url": info.http_url,
            "rtmp_url": info.rtmp_url,
            "srt_url": info.srt_url,
            "rtmps_url": info.rtmps_url,
            "internal_url": info.internal_url,
            "heartbeat_at": now,
            "lease_expires_at": expires,
        }
        upsert = self._insert(Node).values(name=info.name, started_at=started, **values)
        # Core on a connection of its own: an ORM session around the same statements
        # doubled the CPU of a beat (one every lease / 3, on every node, all the time)
        engine: AsyncEngine = self._sessions.kw["bind"]
        async with engine.begin() as s:
            await s.execute(upsert.on_conflict_do_update(index_elements=["name"], set_=values))
            if not renew_claims:
                return
            await s.execute(
                update(StreamClaim)
                .where(StreamClaim.node == info.name)
                .values(lease_expires_at=expires)
            )
            await s.execute(
                update(JobClaim).where(JobClaim.node == info.name).values(lease_expires_at=expires)
            )

    async def leave(self, name: str) -> None:
        """A clean stop: the node and whatever it still claimed are gone at once."""
        async with self._sessions.begin() as s:
            await s.execute(delete(StreamClaim).where(StreamClaim.node == name))
            await s.execute(delete(JobClaim).where(JobClaim.node == name))
            await s.execute(delete(Node).where(Node.name == name))

    async def notify(self, channel: str, payload: str) -> None:
        """PostgreSQL ``NOTIFY``: every node listening on ``channel`` hears it."""
        async with self._sessions.begin() as s:
            await s.execute(
                text("SELECT pg_notify(:channel, :payload)"),
                {"channel": channel, "payload": payload},
            )

    async def live(self, now: datetime) -> Sequence[Node]:
        async with self._sessions() as s:
            rows = await s.scalars(
                select(Node).where(Node.lease_expires_at > now).order_by(Node.name)
            )
            return list(rows)

    async def owner_url(self, edge_id: str, this: str, now: datetime) -> str | None:
        """The internal URL of the live node, other than ``this``, that carries the
        stream of ``edge_id``: the one whose claim holds it, else (the stream just
        ended; its playlists stay fetchable there for a while) the node of its latest
        session. The only node a request for that edge id may be sent to."""
        claimed = (
            select(Node.internal_url)
            .join(StreamClaim, StreamClaim.node == Node.name)
            .join(LiveStream, LiveStream.id == StreamClaim.stream_id)
            .where(LiveStream.edge_id == edge_id, StreamClaim.lease_expires_at > now)
        )
        latest = (
            select(StreamSession.node)
            .join(LiveStream, LiveStream.id == StreamSession.stream_id)
            .where(LiveStream.edge_id == edge_id)
            .order_by(StreamSession.started_at.desc())
            .limit(1)
            .scalar_subquery()
        )
        last = select(Node.internal_url).where(Node.name == latest)
        async with self._sessions() as s:
            for query in (claimed, last):
                alive = query.where(Node.lease_expires_at > now, Node.name != this)
                url: str | None = await s.scalar(alive)
                if url is not None:
                    return url
        return None

    async def live_names(self, now: datetime) -> set[str]:
        return {node.name for node in await self.live(now)}


class ClaimRepo:
    """One publisher per stream across every node, taken by one statement.

    ``INSERT … ON CONFLICT DO UPDATE … WHERE`` either inserts the claim, or takes over
    a lapsed one (or this node's own, left by its previous run), or changes nothing:
    the database decides between racing nodes, no check-then-insert window.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], dialect: str) -> None:
        self._sessions = sessions
        self._insert = _upsert(dialect)

    async def take(
        self, stream_id: str, node: str, token: str, now: datetime, lease: float
    ) -> bool:
        values = {
            "node": node,
            "token": token,
            "claimed_at": now,
            "lease_expires_at": now + timedelta(seconds=lease),
        }
        table = StreamClaim.__table__
        statement = (
            self._insert(StreamClaim)
            .values(stream_id=stream_id, **values)
            .on_conflict_do_update(
                index_elements=["stream_id"],
                set_=values,
                where=(table.c.lease_expires_at <= now) | (table.c.node == node),
            )
            .returning(table.c.node)
        )
        async with self._sessions.begin() as s:
            holder: str | None = await s.scalar(statement)
        return holder == node

    async def release(self, stream_id: str, token: str) -> None:
        async with self._sessions.begin() as s:
            await s.execute(
                delete(StreamClaim).where(
                    StreamClaim.stream_id == stream_id, StreamClaim.token == token
                )
            )

    async def release_node(self, node: str) -> None:
        """Every claim a node holds: its previous run's, when it starts again."""
        async with self._sessions.begin() as s:
            await s.execute(delete(StreamClaim).where(StreamClaim.node == node))

    async def held_elsewhere(
        self, stream_ids: Collection[str], node: str, now: datetime
    ) -> set[str]:
        """Those of ``stream_ids`` whose publisher another live node holds."""
        if not stream_ids:
            return set()
        async with self._sessions() as s:
            rows = await s.scalars(
                select(StreamClaim.stream_id).where(
                    StreamClaim.stream_id.in_(list(stream_ids)),
                    StreamClaim.node != node,
                    StreamClaim.lease_expires_at > now,
                )
            )
            return set(rows)

    async def holder(self, stream_id: str, now: datetime) -> str | None:
        """The node holding the stream's publisher, while its lease runs."""
        async with self._sessions() as s:
            return await s.scalar(
                select(StreamClaim.node).where(
                    StreamClaim.stream_id == stream_id, StreamClaim.lease_expires_at > now
                )
            )
