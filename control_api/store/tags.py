"""Tags: names unique per environment, attached to media through ``media_tags``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from control_api.credentials import new_id
from control_api.store.models import Tag, media_tags
from control_api.store.paging import Page


class TagExists(Exception):
    """Another tag of this environment already has the name."""


@dataclass(frozen=True, slots=True)
class TagView:
    row: Tag
    media_count: int


async def _counts(s: AsyncSession, ids: list[str]) -> dict[str, int]:
    if not ids:
        return {}
    rows = await s.execute(
        select(media_tags.c.tag_id, func.count())
        .where(media_tags.c.tag_id.in_(ids))
        .group_by(media_tags.c.tag_id)
    )
    return {str(tag): int(count) for tag, count in rows}


async def ensure_tags(s: AsyncSession, environment_id: str, names: Iterable[str]) -> list[Tag]:
    """The tags with these names, created when missing (a PATCH may name new tags)."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return []
    found = {
        t.name: t
        for t in await s.scalars(
            select(Tag).where(Tag.environment_id == environment_id, Tag.name.in_(wanted))
        )
    }
    now = datetime.now(UTC)
    for name in wanted:
        if name not in found:
            found[name] = Tag(
                id=new_id("tag"), environment_id=environment_id, name=name, created_at=now
            )
            s.add(found[name])
    return [found[name] for name in wanted]


class TagRepo:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def _name_taken(self, s: AsyncSession, environment_id: str, name: str) -> bool:
        found = await s.scalar(
            select(Tag.id).where(Tag.environment_id == environment_id, Tag.name == name)
        )
        return found is not None

    async def create(self, environment_id: str, name: str) -> Tag:
        row = Tag(
            id=new_id("tag"), environment_id=environment_id, name=name, created_at=datetime.now(UTC)
        )
        try:
            async with self._sessions.begin() as s:
                if await self._name_taken(s, environment_id, name):
                    raise TagExists(name)
                s.add(row)
        except IntegrityError:  # a concurrent create won the race
            raise TagExists(name) from None
        return row

    async def get(self, environment_id: str, tag_id: str) -> TagView | None:
        async with self._sessions() as s:
            row = await s.scalar(
                select(Tag).where(Tag.id == tag_id, Tag.environment_id == environment_id)
            )
            if row is None:
                return None
            return TagView(row, (await _counts(s, [row.id])).get(row.id, 0))

    async def list(self, environment_id: str, limit: int, offset: int) -> Page[TagView]:
        where = Tag.environment_id == environment_id
        async with self._sessions() as s:
            total = await s.scalar(select(func.count()).select_from(Tag).where(where))
            rows = list(
                await s.scalars(
                    select(Tag).where(where).order_by(Tag.name, Tag.id).limit(limit).offset(offset)
                )
            )
            counts = await _counts(s, [r.id for r in rows])
        return Page(items=[TagView(r, counts.get(r.id, 0)) for r in rows], total=int(total or 0))

    async def rename(self, environment_id: str, tag_id: str, name: str) -> TagView | None:
        try:
            async with self._sessions.begin() as s:
                row = await s.scalar(
                    select(Tag).where(Tag.id == tag_id, Tag.environment_id == environment_id)
                )
                if row is None:
                    return None
                if row.name != name and await self._name_taken(s, environment_id, name):
                    raise TagExists(name)
                row.name = name
        except IntegrityError:
            raise TagExists(name) from None
        return await self.get(environment_id, tag_id)

    async def delete(self, environment_id: str, tag_id: str) -> bool:
        """Remove the tag from every media item and delete it."""
        async with self._sessions.begin() as s:
            found = await s.scalar(
                select(Tag.id).where(Tag.id == tag_id, Tag.environment_id == environment_id)
            )
            if found is None:
                return False
            await s.execute(delete(media_tags).where(media_tags.c.tag_id == tag_id))
            await s.execute(delete(Tag).where(Tag.id == tag_id))
        return True
