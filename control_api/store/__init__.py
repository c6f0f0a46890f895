"""Persistent state: the database, its migrations and one repository per resource."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from control_api.store.api_keys import ApiKeyRepo
from control_api.store.channels import ChannelRepo, LiveStreamWrites
from control_api.store.db import make_engine, make_sessionmaker, migrate
from control_api.store.destinations import DestinationRepo
from control_api.store.environments import EnvironmentRepo
from control_api.store.folders import FolderRepo
from control_api.store.ingest_failures import IngestFailureRepo
from control_api.store.jobs import JobRepo
from control_api.store.live_streams import LiveStreamRepo, end_idle
from control_api.store.media import MediaRepo
from control_api.store.models import StreamSession
from control_api.store.nodes import ClaimRepo, NodeRepo
from control_api.store.queue import QueueRepo
from control_api.store.secrets import signing_key
from control_api.store.sessions import SessionRepo, abandoned_at
from control_api.store.tags import TagRepo
from control_api.store.tasks import TaskRepo
from control_api.store.uploads import UploadRepo
from control_api.store.webhooks import WebhookRepo
from control_api.webhooks.hub import EventHub


class Store:
    """One object the API and CLI hold: engine plus the repositories built on it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = make_sessionmaker(engine)
        self.environments = EnvironmentRepo(self.sessions)
        self.api_keys = ApiKeyRepo(self.sessions)
        self.live_streams = LiveStreamRepo(self.sessions)
        self.stream_sessions = SessionRepo(self.sessions)
        self.destinations = DestinationRepo(self.sessions)
        self.folders = FolderRepo(self.sessions)
        self.tags = TagRepo(self.sessions)
        self.media = MediaRepo(self.sessions)
        self.uploads = UploadRepo(self.sessions)
        self.tasks = TaskRepo(self.sessions)
        self.ingest_failures = IngestFailureRepo(self.sessions)
        self.webhooks = WebhookRepo(self.sessions, engine.dialect.name != "sqlite")
        self.nodes = NodeRepo(self.sessions, engine.dialect.name)
        self.claims = ClaimRepo(self.sessions, engine.dialect.name)
        self.jobs = JobRepo(self.sessions, engine.dialect.name)
        self.queue = QueueRepo(self.sessions)
        self.channels = ChannelRepo(
            self.sessions, None if self.shared else LiveStreamWrites(engine)
        )
        self.events = EventHub()
        """Committed changes are announced here (webhooks listen); see control_api.webhooks."""

    @classmethod
    async def open(cls, url: str, echo: bool = False) -> Store:
        store = cls(make_engine(url, echo=echo))
        await migrate(store.engine)
        return store

    async def close(self) -> None:
        await self.engine.dispose()

    async def token_signing_key(self) -> bytes:
        return await signing_key(self.sessions, "token-signing")

    async def playback_signing_key(self) -> bytes:
        """Separate from the API token key: a leaked viewer token must not hint at it."""
        return await signing_key(self.sessions, "playback-signing")

    @property
    def shared(self) -> bool:
        """Several nodes may use this database at once (PostgreSQL; SQLite is one process's)."""
        return self.engine.dialect.name != "sqlite"

    async def reconcile_after_restart(self, node: str | None = None) -> tuple[int, int]:
        """Close sessions and end streams that a previous process left live (sessions
        first: a stream ends with its last session), and announce ``stream.ended`` for
        each, as a clean stop would have. Run it once listeners are attached.

        On a shared database the sessions of other live nodes are theirs and stay
        open; ``node``'s own (its previous run's) and dead nodes' are closed."""
        now = datetime.now(UTC)
        keep: set[str] = set()
        if node is not None and self.shared:
            keep = await self.nodes.live_names(now) - {node}
            await self.claims.release_node(node)
        sessions = await self.stream_sessions.close_open(now, keep)
        streams = await self.live_streams.end_stale(now)
        for stream in streams:
            self.events.emit("stream.ended", stream.environment_id, stream)
        return sessions, len(streams)

    async def end_dead_nodes_sessions(self, node: str) -> tuple[int, int]:
        """A node killed (or cut off) past its lease left sessions open: close them
        where their encoders were last seen, end their streams and announce
        ``stream.ended`` once, whichever surviving node ``node`` gets there first."""
        now = datetime.now(UTC)
        alive = await self.nodes.live_names(now) | {node}
        async with self.sessions.begin() as s:
            closed = await self.stream_sessions.close_dead_nodes(s, now, alive)
            ended = await end_idle(s, now, {r.stream_id for r in closed}) if closed else []
        for stream in ended:
            self.events.emit("stream.ended", stream.environment_id, stream)
        return len(closed), len(ended)

    async def hand_over_session(self, session_id: str, bytes_in: int, seen: datetime) -> None:
        """This node lets an away encoder's session go to the node it reconnected to:
        the figures so far are saved for that node to go on from."""
        async with self.sessions.begin() as s:
            await s.execute(
                update(StreamSession)
                .where(StreamSession.id == session_id, StreamSession.ended_at.is_(None))
                .values(bytes_in=bytes_in, last_seen_at=seen)
            )

    async def end_unclaimed_session(self, session_id: str, node: str) -> bool:
        """A session this node handed over that no node continued within its reconnect
        window ends (``stream.ended``), where the encoder was last seen; one another
        node continues is its own now and is left alone."""
        now = datetime.now(UTC)
        async with self.sessions.begin() as s:
            row = await s.scalar(
                select(StreamSession)
                .where(
                    StreamSession.id == session_id,
                    StreamSession.node == node,
                    StreamSession.ended_at.is_(None),
                )
                .with_for_update()
            )
            if row is None:
                return False
            row.ended_at = abandoned_at(row, now)
            await s.flush()
            ended = await end_idle(s, now, {row.stream_id})
        for stream in ended:
            self.events.emit("stream.ended", stream.environment_id, stream)
        return True


__all__ = ["Store"]
