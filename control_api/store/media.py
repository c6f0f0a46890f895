"""Media items: the library's files, their probe results, folder and tags.

Status changes are conditional updates (``uploading → processing → ready|error``),
so a probe or an import finishing after the item was deleted changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from control_api.store.folders import UnknownFolder, folder_exists
from control_api.store.models import Media, Tag, media_tags
from control_api.store.paging import Page
from control_api.store.tags import ensure_tags


class UnknownMedia(LookupError):
    """Media ids named in the request that do not exist in this environment."""

    def __init__(self, ids: Sequence[str]) -> None:
        super().__init__(", ".join(ids))
        self.ids = list(ids)


class MediaRepo:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(self, row: Media) -> Media:
        async with self._sessions.begin() as s:
            s.add(row)
        return row

    async def get(self, environment_id: str, media_id: str) -> Media | None:
        async with self._sessions() as s:
            return await s.scalar(
                select(Media).where(Media.id == media_id, Media.environment_id == environment_id)
            )

    async def by_id(self, media_id: str) -> Media | None:
        """Any environment: for background work that was handed an id by the API."""
        async with self._sessions() as s:
            return await s.get(Media, media_id)

    async def list(
        self,
        environment_id: str,
        limit: int,
        offset: int,
        folder_id: str | None = None,
        tag: str | None = None,
    ) -> Page[Media]:
        where: list[Any] = [Media.environment_id == environment_id]
        if folder_id is not None:
            where.append(Media.folder_id == folder_id)
        if tag is not None:
            tagged = (
                select(media_tags.c.media_id)
                .join(Tag, Tag.id == media_tags.c.tag_id)
                .where(Tag.environment_id == environment_id, Tag.name == tag)
            )
            where.append(Media.id.in_(tagged))
        async with self._sessions() as s:
            total = await s.scalar(select(func.count()).select_from(Media).where(*where))
            rows = await s.scalars(
                select(Media)
                .where(*where)
                .order_by(Media.created_at.desc(), Media.id)
                .limit(limit)
                .offset(offset)
            )
            return Page(items=list(rows), total=int(total or 0))

    async def update(
        self, environment_id: str, media_id: str, fields: Mapping[str, Any]
    ) -> Media | None:
        """Change ``name``, ``folder_id`` (None = root) and ``tags`` (names; new ones are
        created). A concurrent request creating the same new tag is retried once."""
        for attempt in (1, 2):
            try:
                if not await self._update(environment_id, media_id, fields):
                    return None
                break
            except IntegrityError:
                if attempt == 2:
                    raise
        return await self.get(environment_id, media_id)

    async def _update(self, environment_id: str, media_id: str, fields: Mapping[str, Any]) -> bool:
        async with self._sessions.begin() as s:
            row = await s.scalar(
                select(Media).where(Media.id == media_id, Media.environment_id == environment_id)
            )
            if row is None:
                return False
            folder = fields.get("folder_id")
            if folder is not None and not await folder_exists(s, environment_id, folder):
                raise UnknownFolder(folder)
            for name, value in fields.items():
                if name == "tags":
                    row.tags = await ensure_tags(s, environment_id, value)
                else:
                    setattr(row, name, value)
        return True

    async def move(self, environment_id: str, folder_id: str, media_ids: Sequence[str]) -> None:
        """All or nothing: UnknownFolder / UnknownMedia when any id is not in this environment."""
        wanted = list(dict.fromkeys(media_ids))
        async with self._sessions.begin() as s:
            if not await folder_exists(s, environment_id, folder_id):
                raise UnknownFolder(folder_id)
            found = set(
                await s.scalars(
                    select(Media.id).where(
                        Media.environment_id == environment_id, Media.id.in_(wanted)
                    )
                )
            )
            missing = [m for m in wanted if m not in found]
            if missing:
                raise UnknownMedia(missing)
            if wanted:
                await s.execute(
                    update(Media).where(Media.id.in_(wanted)).values(folder_id=folder_id)
                )

    async def delete(self, environment_id: str, media_id: str) -> Media | None:
        """The deleted row (its ``path`` names the file to remove), or None when unknown."""
        async with self._sessions.begin() as s:
            row = await s.scalar(
                select(Media).where(Media.id == media_id, Media.environment_id == environment_id)
            )
            if row is None:
                return None
            await s.delete(row)
        return row

    async def transition(self, media_id: str, old: str, new: str, **fields: Any) -> bool:
        """``old → new`` with the other fields, only if the item is still in ``old``."""
        async with self._sessions.begin() as s:
            result = await s.execute(
                update(Media)
                .where(Media.id == media_id, Media.status == old)
                .values(status=new, **fields)
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def with_status(self, status: str) -> Sequence[Media]:
        async with self._sessions() as s:
            return list(await s.scalars(select(Media).where(Media.status == status)))

    async def delete_ids(self, media_ids: Sequence[str]) -> None:
        if media_ids:
            async with self._sessions.begin() as s:
                await s.execute(delete(Media).where(Media.id.in_(list(media_ids))))

    async def recordings_before(self, cutoff: datetime) -> Sequence[Media]:
        """Recordings made before ``cutoff`` (``recording.delete_after_days``)."""
        async with self._sessions() as s:
            return list(
                await s.scalars(
                    select(Media).where(Media.source == "recording", Media.created_at < cutoff)
                )
            )
