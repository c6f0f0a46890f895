"""Live streams: configuration, state and the hashed stream key.

State-dependent changes (delete, rotate-key) are single conditional statements so
that a publisher going live between a check and a write cannot slip through.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from control_api.credentials import hash_secret, new_id, new_stream_key
from control_api.store.models import LiveStream, StreamSession

BUSY_STATES = ("live", "connecting")


class StreamBusy(Exception):
    """The stream has a publisher; the change needs it idle (or ``force``)."""


@dataclass(frozen=True, slots=True)
class Page:
    items: list[LiveStream]
    total: int


class LiveStreamRepo:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create(
        self, environment_id: str, fields: Mapping[str, Any]
    ) -> tuple[LiveStream, str]:
        key = new_stream_key()
        row = LiveStream(
            id=new_id("ls"),
            edge_id=new_id("lse"),
            environment_id=environment_id,
            state="idle",
            enabled=True,
            stream_key_hash=hash_secret(key),
            created_at=datetime.now(UTC),
            **fields,
        )
        async with self._sessions.begin() as s:
            s.add(row)
        return row, key

    async def get(self, environment_id: str, stream_id: str) -> LiveStream | None:
        async with self._sessions() as s:
            return await s.scalar(
                select(LiveStream).where(
                    LiveStream.id == stream_id, LiveStream.environment_id == environment_id
                )
            )

    async def by_key(self, stream_key: str) -> LiveStream | None:
        async with self._sessions() as s:
            return await s.scalar(
                select(LiveStream).where(LiveStream.stream_key_hash == hash_secret(stream_key))
            )

    async def list(self, environment_id: str, limit: int, offset: int) -> Page:
        where = LiveStream.environment_id == environment_id
        async with self._sessions() as s:
            total = await s.scalar(select(func.count()).select_from(LiveStream).where(where))
            rows = await s.scalars(
                select(LiveStream)
                .where(where)
                .order_by(LiveStream.created_at.desc(), LiveStream.id)
                .limit(limit)
                .offset(offset)
            )
            return Page(items=list(rows), total=int(total or 0))

    async def update(
        self, environment_id: str, stream_id: str, fields: Mapping[str, Any]
    ) -> LiveStream | None:
        if fields:
            async with self._sessions.begin() as s:
                await s.execute(
                    update(LiveStream)
                    .where(LiveStream.id == stream_id, LiveStream.environment_id == environment_id)
                    .values(**fields)
                )
        return await self.get(environment_id, stream_id)

    async def delete(self, environment_id: str, stream_id: str) -> bool:
        """True when deleted, False when unknown; StreamBusy while a publisher is on."""
        async with self._sessions.begin() as s:
            result = await s.execute(
                delete(LiveStream).where(
                    LiveStream.id == stream_id,
                    LiveStream.environment_id == environment_id,
                    LiveStream.state.not_in(BUSY_STATES),
                )
            )
        if result.rowcount:  # type: ignore[attr-defined]
            return True
        if await self.get(environment_id, stream_id) is not None:
            raise StreamBusy(stream_id)
        return False

    async def rotate_key(self, environment_id: str, stream_id: str, force: bool) -> str | None:
        """New key, old one dead at once. None when unknown; StreamBusy unless forced."""
        key = new_stream_key()
        query = update(LiveStream).where(
            LiveStream.id == stream_id, LiveStream.environment_id == environment_id
        )
        if not force:
            query = query.where(LiveStream.state.not_in(BUSY_STATES))
        async with self._sessions.begin() as s:
            result = await s.execute(query.values(stream_key_hash=hash_secret(key)))
        if result.rowcount:  # type: ignore[attr-defined]
            return key
        if await self.get(environment_id, stream_id) is not None:
            raise StreamBusy(stream_id)
        return None

    async def end_stale(self, when: datetime) -> Sequence[LiveStream]:
        """After a crash nobody is publishing: live/connecting streams become ended, at
        the end of their last session (see ``SessionRepo.close_open``, run first), or
        at ``when`` if they have none; never before they went live. A stream with a
        session still open (another node's) is left alone. Returns them as written,
        to announce."""
        async with self._sessions.begin() as s:
            return await end_idle(s, when)


async def end_idle(
    s: AsyncSession, when: datetime, only: Collection[str] | None = None
) -> list[LiveStream]:
    """In ``s``'s transaction: busy streams (of ``only``, if given) without an open
    session end where their last session ended (``when`` at the latest)."""
    still_open = select(StreamSession.id).where(
        StreamSession.stream_id == LiveStream.id, StreamSession.ended_at.is_(None)
    )
    query = select(LiveStream).where(LiveStream.state.in_(BUSY_STATES), ~still_open.exists())
    if only is not None:
        query = query.where(LiveStream.id.in_(list(only)))
    rows = list(await s.scalars(query))
    if not rows:
        return []
    last = await s.execute(
        select(StreamSession.stream_id, func.max(StreamSession.ended_at))
        .where(StreamSession.stream_id.in_([r.id for r in rows]))
        .group_by(StreamSession.stream_id)
    )
    ends: dict[str, datetime | None] = {sid: end for sid, end in last.all()}
    for row in rows:
        end = ends.get(row.id) or when
        if row.started_at is not None:
            end = max(end, row.started_at)
        row.state, row.ended_at = "ended", min(end, when)
    return rows
