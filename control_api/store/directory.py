"""The store's side of ``server.ingest.ports.StreamDirectory``: keys, sessions, state.

Each state change is announced on the event hub after it commits (webhooks), with
the stream row as it was written; announcing never blocks the ingest path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from control_api.credentials import hash_secret, new_id
from control_api.settings import PlanSettings
from control_api.store.models import LiveStream, StreamSession
from control_api.webhooks.events import EventType
from control_api.webhooks.hub import EventHub
from server.bus import PlanLimits, StreamGrant
from server.playout.schedule import Schedule, next_window


class StoreDirectory:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        plans: Mapping[str, PlanSettings] | None = None,
        events: EventHub | None = None,
        node: str | None = None,
    ) -> None:
        self._sessions = sessions
        self._node = node
        self._plans = dict(plans or {})
        self._events = events or EventHub()
        self._lookups: dict[str, asyncio.Future[StreamGrant | None]] = {}
        self.adopted: dict[str, int] = {}
        """Sessions continued here from another node: the bytes they had there."""

    def _limits(self, plan: str) -> PlanLimits | None:
        settings = self._plans.get(plan)
        if settings is None:
            return None
        return PlanLimits(
            max_width=settings.max_resolution.width,
            max_height=settings.max_resolution.height,
            max_frame_rate=settings.max_frame_rate,
            max_bitrate=settings.max_bitrate,
        )

    async def authorize(self, stream_key: str) -> StreamGrant | None:
        """Callers presenting the same key at once share one query.

        A flood of handshakes replaying one (bad) key would otherwise hold a database
        session, its statement and result objects per handshake, hundreds at a time:
        a burst of short-lived allocations that leaves the process's heap fragmented
        (RSS stays up after the flood). Only queries in flight are shared, nothing is
        cached: the next caller after the answer asks the database again.
        """
        digest = hash_secret(stream_key)
        lookup = self._lookups.get(digest)
        if lookup is None:
            lookup = asyncio.ensure_future(self._grant(digest))
            self._lookups[digest] = lookup
            lookup.add_done_callback(lambda done: self._lookup_done(digest, done))
        # shielded: a caller that gives up (its connection closed) must not cancel
        # the query the others wait for
        return await asyncio.shield(lookup)

    def _lookup_done(self, digest: str, lookup: asyncio.Future[StreamGrant | None]) -> None:
        del self._lookups[digest]
        if not lookup.cancelled():
            lookup.exception()  # retrieved here too: every waiter may have gone

    async def _grant(self, digest: str) -> StreamGrant | None:
        async with self._sessions() as s:
            row = await s.scalar(select(LiveStream).where(LiveStream.stream_key_hash == digest))
        return None if row is None else self.grant_of(row)

    async def grant_for(self, stream_id: str) -> StreamGrant | None:
        """The grant of a stream found by id (a channel's playout has no key to show)."""
        async with self._sessions() as s:
            row = await s.get(LiveStream, stream_id)
        return None if row is None else self.grant_of(row)

    def grant_of(self, row: LiveStream) -> StreamGrant:
        return StreamGrant(
            stream_id=row.id,
            environment_id=row.environment_id,
            enabled=row.enabled,
            reconnect_window_seconds=row.reconnect_window_seconds,
            srt_passphrase=row.srt_passphrase,
            limits=self._limits(row.plan),
            edge_id=row.edge_id,
            low_latency=row.low_latency,
            private=row.playback_policy == "private",
            max_clients=plan.max_clients if (plan := self._plans.get(row.plan)) else None,
            recording=row.recording,
            quality=row.quality,
        )

    async def session_opened(self, stream_id: str, protocol: str, remote: str, at: datetime) -> str:
        """A new session; or, when the encoder left another node inside its reconnect
        window (that node handed it over, or died), that session goes on here: same
        id, the stream stays live, no event."""
        session_id = new_id("ses")
        async with self._sessions.begin() as s:
            stream = await s.get(LiveStream, stream_id)
            if stream is None:
                raise LookupError(stream_id)
            continued = await self._continue(s, stream, protocol, remote, at)
            if continued is not None:
                return continued
            s.add(
                StreamSession(
                    id=session_id,
                    stream_id=stream_id,
                    environment_id=stream.environment_id,
                    protocol=protocol,
                    remote_addr=remote,
                    started_at=at,
                    bytes_in=0,
                    node=self._node,
                )
            )
            stream.state = "connecting"
            stream.ended_at = None
            stream.error_reason = None
        self._events.emit("stream.connecting", stream.environment_id, stream)
        return session_id

    async def _continue(
        self, s: AsyncSession, stream: LiveStream, protocol: str, remote: str, at: datetime
    ) -> str | None:
        if self._node is None or stream.state != "live":
            return None
        since = at - timedelta(seconds=stream.reconnect_window_seconds)
        row = await s.scalar(
            select(StreamSession)
            .where(
                StreamSession.stream_id == stream.id,
                StreamSession.ended_at.is_(None),
                StreamSession.node.is_not(None),
                StreamSession.node != self._node,
                StreamSession.last_seen_at >= since,
            )
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if row is None:
            return None
        row.node, row.protocol, row.remote_addr = self._node, protocol, remote
        self.adopted[row.id] = row.bytes_in
        return row.id

    async def stream_live(self, stream_id: str, at: datetime) -> None:
        async with self._sessions.begin() as s:
            stream = await s.get(LiveStream, stream_id)
            if stream is None or stream.state == "live":  # a continued session: no news
                return
            stream.state, stream.started_at, stream.ended_at = "live", at, None
        self._events.emit("stream.live", stream.environment_id, stream)

    async def session_closed(
        self, stream_id: str, session_id: str, at: datetime, bytes_in: int, error: str | None
    ) -> None:
        async with self._sessions.begin() as s:
            await s.execute(
                update(StreamSession)
                .where(StreamSession.id == session_id)
                .values(ended_at=at, bytes_in=bytes_in + self.adopted.pop(session_id, 0))
            )
            stream = await s.get(LiveStream, stream_id)
            if stream is None:
                return
            stream.state = "error" if error else _state_after_session(stream, at)
            stream.ended_at, stream.error_reason = at, error
        ended: EventType = "stream.error" if error else "stream.ended"
        self._events.emit(ended, stream.environment_id, stream)


def _state_after_session(stream: LiveStream, at: datetime) -> str:
    """``ended``, except for a channel whose schedule has a window still to come: it is
    ``idle`` until then (api.md: outside its schedule a channel is idle)."""
    if stream.source != "queue" or stream.scheduled_start is None:
        return "ended"
    schedule = Schedule(stream.scheduled_start, stream.scheduled_end, stream.schedule_repeat)  # type: ignore[arg-type]
    window = next_window(schedule, at)
    return (
        "idle" if window is not None and window.start is not None and window.start > at else "ended"
    )
