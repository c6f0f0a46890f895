"""Channel queues: ordered items of ready media, positions kept dense (0..n-1).

Every change that moves positions runs in one transaction that first locks the
channel's row (PostgreSQL ``FOR UPDATE``; SQLite serialises writers anyway), so two
concurrent reorders of one queue cannot leave duplicate or missing positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from control_api.credentials import new_id
from control_api.store.live_streams import BUSY_STATES
from control_api.store.models import LiveStream, Media, QueueItem
from control_api.store.paging import Page


class MediaNotReady(Exception):
    """Only ``ready`` media can be queued."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class UnknownQueueMedia(LookupError):
    """The media id is not in this environment."""


QueueRow = tuple[QueueItem, Media]


class QueueRepo:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def list(self, stream_id: str, limit: int, offset: int) -> Page[QueueRow]:
        async with self._sessions() as s:
            total = await s.scalar(
                select(func.count()).select_from(QueueItem).where(QueueItem.stream_id == stream_id)
            )
            rows = await s.execute(
                select(QueueItem, Media)
                .join(Media, Media.id == QueueItem.media_id)
                .where(QueueItem.stream_id == stream_id)
                .order_by(QueueItem.position, QueueItem.id)
                .limit(limit)
                .offset(offset)
            )
            return Page(items=[(q, m) for q, m in rows.all()], total=int(total or 0))

    async def entries(self, stream_id: str) -> Sequence[QueueRow]:
        """The whole queue in order (playout reads it at every item boundary)."""
        async with self._sessions() as s:
            rows = await s.execute(
                select(QueueItem, Media)
                .join(Media, Media.id == QueueItem.media_id)
                .where(QueueItem.stream_id == stream_id)
                .order_by(QueueItem.position, QueueItem.id)
            )
            return [(q, m) for q, m in rows.all()]

    async def get(self, stream_id: str, item_id: str) -> QueueRow | None:
        async with self._sessions() as s:
            row = await s.execute(
                select(QueueItem, Media)
                .join(Media, Media.id == QueueItem.media_id)
                .where(QueueItem.stream_id == stream_id, QueueItem.id == item_id)
            )
            found = row.first()
            return None if found is None else (found[0], found[1])

    async def add(
        self, environment_id: str, stream_id: str, media_id: str, position: int | None
    ) -> QueueRow:
        """Insert at ``position`` (clamped; None = the end), shifting the ones after."""
        async with self._sessions.begin() as s:
            await _lock(s, stream_id)
            media = await s.scalar(
                select(Media).where(Media.id == media_id, Media.environment_id == environment_id)
            )
            if media is None:
                raise UnknownQueueMedia(media_id)
            if media.status != "ready":
                raise MediaNotReady(media.status)
            count = await _count(s, stream_id)
            at = count if position is None else max(0, min(position, count))
            await _shift(s, stream_id, at, count, +1)
            item = QueueItem(
                id=new_id("qi"),
                environment_id=environment_id,
                stream_id=stream_id,
                media_id=media_id,
                position=at,
                created_at=datetime.now(UTC),
            )
            s.add(item)
        return item, media

    async def move(self, stream_id: str, item_id: str, position: int) -> QueueRow | None:
        """Reorder: the item lands at ``position`` (clamped), the others close up."""
        async with self._sessions.begin() as s:
            await _lock(s, stream_id)
            item = await s.scalar(
                select(QueueItem).where(QueueItem.stream_id == stream_id, QueueItem.id == item_id)
            )
            if item is None:
                return None
            count = await _count(s, stream_id)
            old, new = item.position, max(0, min(position, count - 1))
            if new < old:
                await _shift(s, stream_id, new, old, +1)
            elif new > old:
                await _shift(s, stream_id, old + 1, new + 1, -1)
            item.position = new
        return await self.get(stream_id, item_id)

    async def remove(self, stream_id: str, item_id: str) -> QueueItem | None:
        """The removed item (with the position it had), or None when unknown."""
        async with self._sessions.begin() as s:
            await _lock(s, stream_id)
            item = await s.scalar(
                select(QueueItem).where(QueueItem.stream_id == stream_id, QueueItem.id == item_id)
            )
            if item is None:
                return None
            await s.delete(item)
            await s.flush()
            await _shift(s, stream_id, item.position + 1, None, -1)
        return item

    async def live_channel_with(self, environment_id: str, media_id: str) -> LiveStream | None:
        """A live (or connecting) channel whose queue holds the media item, if any."""
        async with self._sessions() as s:
            return await s.scalar(
                select(LiveStream)
                .join(QueueItem, QueueItem.stream_id == LiveStream.id)
                .where(
                    QueueItem.media_id == media_id,
                    LiveStream.environment_id == environment_id,
                    LiveStream.source == "queue",
                    LiveStream.state.in_(BUSY_STATES),
                )
                .limit(1)
            )

    async def forget_media(self, environment_id: str, media_id: str) -> None:
        """The media item is being deleted: take it out of every queue, closing the gaps."""
        async with self._sessions() as s:
            streams = set(
                await s.scalars(
                    select(QueueItem.stream_id).where(
                        QueueItem.media_id == media_id, QueueItem.environment_id == environment_id
                    )
                )
            )
        for stream_id in streams:
            async with self._sessions() as s:
                ids = list(
                    await s.scalars(
                        select(QueueItem.id).where(
                            QueueItem.stream_id == stream_id, QueueItem.media_id == media_id
                        )
                    )
                )
            for item_id in ids:
                await self.remove(stream_id, item_id)


async def _lock(s: AsyncSession, stream_id: str) -> None:
    await s.execute(select(LiveStream.id).where(LiveStream.id == stream_id).with_for_update())


async def _count(s: AsyncSession, stream_id: str) -> int:
    found = await s.scalar(
        select(func.count()).select_from(QueueItem).where(QueueItem.stream_id == stream_id)
    )
    return int(found or 0)


async def _shift(s: AsyncSession, stream_id: str, start: int, stop: int | None, by: int) -> None:
    """Positions in ``[start, stop)`` (``stop`` None: to the end) move by ``by``."""
    where = [QueueItem.stream_id == stream_id, QueueItem.position >= start]
    if stop is not None:
        where.append(QueueItem.position < stop)
    await s.execute(update(QueueItem).where(*where).values(position=QueueItem.position + by))
