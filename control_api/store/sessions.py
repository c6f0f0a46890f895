"""Ingest sessions: one row per publishing session of a stream."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from control_api.store.models import StreamSession


@dataclass(frozen=True, slots=True)
class SessionPage:
    items: list[StreamSession]
    total: int


def abandoned_at(row: StreamSession, when: datetime) -> datetime:
    """Where a session its process did not close ends: when its encoder was last seen."""
    return min(max(row.last_seen_at or row.started_at, row.started_at), when)


class SessionRepo:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def get(self, environment_id: str, session_id: str) -> StreamSession | None:
        async with self._sessions() as s:
            return await s.scalar(
                select(StreamSession).where(
                    StreamSession.id == session_id, StreamSession.environment_id == environment_id
                )
            )

    async def list_for_stream(self, stream_id: str, limit: int, offset: int) -> SessionPage:
        where = StreamSession.stream_id == stream_id
        async with self._sessions() as s:
            total = await s.scalar(select(func.count()).select_from(StreamSession).where(where))
            rows = await s.scalars(
                select(StreamSession)
                .where(where)
                .order_by(StreamSession.started_at.desc(), StreamSession.id)
                .limit(limit)
                .offset(offset)
            )
            return SessionPage(items=list(rows), total=int(total or 0))

    async def close_open(self, when: datetime, keep_nodes: Collection[str] = ()) -> int:
        """Sessions a crash left open end where their encoder was last seen (saved by
        the checkpoints), so their duration leaves out the downtime; one never
        checkpointed ends where it started, and none ends after ``when``. Sessions on
        ``keep_nodes`` (other nodes, alive) are left alone."""
        query = select(StreamSession).where(StreamSession.ended_at.is_(None))
        if keep_nodes:
            query = query.where(
                StreamSession.node.is_(None) | StreamSession.node.not_in(keep_nodes)
            )
        async with self._sessions.begin() as s:
            rows = list(await s.scalars(query))
            for row in rows:
                row.ended_at = abandoned_at(row, when)
        return len(rows)

    async def close_dead_nodes(
        self, s: AsyncSession, when: datetime, alive: Collection[str]
    ) -> list[StreamSession]:
        """In ``s``'s transaction: close the open sessions of nodes not ``alive``. The
        rows are locked and others' locked rows skipped, so when several nodes sweep
        at once each session is closed (and its stream announced) by one of them."""
        rows = list(
            await s.scalars(
                select(StreamSession)
                .where(
                    StreamSession.ended_at.is_(None),
                    StreamSession.node.is_not(None),
                    StreamSession.node.not_in(list(alive)),
                )
                .with_for_update(skip_locked=True)
            )
        )
        for row in rows:
            row.ended_at = abandoned_at(row, when)
        await s.flush()
        return rows

    async def set_recording(self, session_id: str, media_id: str) -> None:
        """Point the session at its recording (the first, when a change split it)."""
        async with self._sessions.begin() as s:
            await s.execute(
                update(StreamSession)
                .where(StreamSession.id == session_id, StreamSession.recording_media_id.is_(None))
                .values(recording_media_id=media_id)
            )

    async def set_viewers(self, session_id: str, peak_viewers: int, viewer_seconds: float) -> None:
        """The session's audience, as the media plane counted it by its end."""
        async with self._sessions.begin() as s:
            await s.execute(
                update(StreamSession)
                .where(StreamSession.id == session_id)
                .values(peak_viewers=peak_viewers, viewer_seconds=viewer_seconds)
            )
