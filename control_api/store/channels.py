"""Channels' schedule flags and playout state (the queue itself is ``queue``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, event, or_, select, update
from sqlalchemy.engine import Connection
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


_WROTE = "relaycast_wrote_live_streams"
"""Set in a pooled connection's ``info`` by a write to ``live_streams``, until it is
back in the pool (its transaction over)."""


class LiveStreamWrites:
    """Tells whether ``live_streams`` may have changed since a given moment, for a
    database only this process writes (SQLite: ``Store.shared`` is False, and
    ``--workers`` refuses it).

    The scheduler reads the channels every second (``ChannelRepo.active``); on an idle
    server that read, a pool checkout and a few hops to the driver's thread each time,
    was half of the whole process's CPU. Every write goes through this process's
    engine, so the engine's own events say when the answer can have changed:
    ``generation`` moves when a statement that is not a ``SELECT`` names the table, and
    again when that connection is back in the pool, its commit or rollback done (a
    read while the write was open saw the rows before it, WAL). An answer read at some
    generation is still the database's answer while the generation has not moved."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.generation = 0
        event.listen(engine.sync_engine, "after_cursor_execute", self._executed)
        event.listen(engine.sync_engine.pool, "checkin", self._checked_in)

    def _executed(
        self,
        conn: Connection,
        _cursor: Any,
        statement: str,
        _parameters: Any,
        _context: Any,
        _executemany: bool,
    ) -> None:
        if "live_streams" not in statement or statement.lstrip()[:6].upper() == "SELECT":
            return
        self.generation += 1
        conn.info[_WROTE] = True

    def _checked_in(self, _dbapi_connection: Any, record: Any) -> None:
        if record is not None and record.info.pop(_WROTE, False):
            self.generation += 1


class ChannelRepo:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], writes: LiveStreamWrites | None = None
    ) -> None:
        """``writes``: only on a database this process alone writes; then ``active``
        answers from its last read until ``live_streams`` is written."""
        self._sessions = sessions
        self._writes = writes
        self._active: Sequence[Row[Any]] | None = None
        self._active_generation = -1

    async def get(self, stream_id: str) -> LiveStream | None:
        async with self._sessions() as s:
            return await s.scalar(
                select(LiveStream).where(LiveStream.id == stream_id, LiveStream.source == "queue")
            )

    async def active(self) -> Sequence[Row[Any]]:
        """Channels that are on or have a schedule: what the scheduler looks at, every
        second on every node. Only the columns a ``Channel`` needs, on a plain
        connection: a session and whole ``LiveStream`` entities cost about three times
        as much CPU for the same answer. On a database of this process alone, the last
        answer while the table has not been written since (``LiveStreamWrites``)."""
        writes = self._writes
        generation = -1 if writes is None else writes.generation
        if self._active is not None and generation == self._active_generation >= 0:
            return self._active
        engine: AsyncEngine = self._sessions.kw["bind"]
        async with engine.connect() as conn:
            result = await conn.execute(_ACTIVE)
            rows = result.all()
        if writes is not None:  # valid while nothing writes the table
            self._active, self._active_generation = rows, generation
        return rows

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
