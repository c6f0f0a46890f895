"""Channels' schedule flags and playout state (the queue itself is ``queue``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from control_api.store.models import LiveStream

_ACTIVE = select(
    # what ``control_api.channels.StoreChannels._channel`` reads
    LiveStream.id,
    LiveStream.environment_id,
    LiveStream.enabled,
    LiveStream.loop,
    LiveStream.profile,
    LiveStream.scheduled_start,
    LiveStream.scheduled_end,
    LiveStream.schedule_repeat,
    LiveStream.playout_on,
    LiveStream.playout_window_start,
    LiveStream.playout_item_id,
    LiveStream.playout_position,
    LiveStream.playout_loops,
).where(
    LiveStream.source == "queue",
    or_(
        LiveStream.playout_on.is_(True),
        LiveStream.scheduled_start.is_not(None),
        LiveStream.scheduled_end.is_not(None),
    ),
)


class ChannelRepo:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def get(self, stream_id: str) -> LiveStream | None:
        async with self._sessions() as s:
            return await s.scalar(
                select(LiveStream).where(LiveStream.id == stream_id, LiveStream.source == "queue")
            )

    async def active(self) -> Sequence[Row[Any]]:
        """Channels that are on or have a schedule: what the scheduler looks at, every
        second on every node. Only the columns a ``Channel`` needs, on a plain
        connection: a session and whole ``LiveStream`` entities cost about three times
        as much CPU for the same answer."""
        engine: AsyncEngine = self._sessions.kw["bind"]
        async with engine.connect() as conn:
            result = await conn.execute(_ACTIVE)
            return result.all()

    async def set_on(self, stream_id: str, on: bool, window_start: datetime | None) -> None:
        values: dict[str, object] = {"playout_on": on}
        if on:
            values["playout_window_start"] = window_start
        else:  # the next start begins at the top of the queue
            values.update(playout_item_id=None, playout_position=0.0, playout_loops=0)
        async with self._sessions.begin() as s:
            await s.execute(update(LiveStream).where(LiveStream.id == stream_id).values(**values))

    async def save_state(
        self, stream_id: str, item_id: str | None, position: float, loops: int
    ) -> None:
        async with self._sessions.begin() as s:
            await s.execute(
                update(LiveStream)
                .where(LiveStream.id == stream_id)
                .values(
                    playout_item_id=item_id,
                    playout_position=position,
                    playout_loops=loops,
                    playout_saved_at=datetime.now(UTC),
                )
            )
