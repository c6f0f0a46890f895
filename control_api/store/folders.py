"""Folders: a tree per environment. Media point at a folder; the root is "no folder".

Moving a folder checks for cycles and deleting one checks for contents inside the
same transaction as the write, so a concurrent change cannot slip between them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from control_api.credentials import new_id
from control_api.store.models import Folder, Media
from control_api.store.paging import Page

ROOT: None = None


class UnknownFolder(LookupError):
    """A folder named in the request does not exist in this environment."""


class FolderCycle(Exception):
    """The move would put a folder inside itself."""


class FolderNotEmpty(Exception):
    """The folder holds media or folders and the caller did not ask for a recursive delete."""


@dataclass(frozen=True, slots=True)
class FolderView:
    row: Folder
    media_count: int


async def folder_exists(s: AsyncSession, environment_id: str, folder_id: str) -> bool:
    found = await s.scalar(
        select(Folder.id).where(Folder.id == folder_id, Folder.environment_id == environment_id)
    )
    return found is not None


async def _subtree(s: AsyncSession, folder_id: str) -> list[str]:
    """The folder and every folder below it, breadth first."""
    found, frontier = [folder_id], [folder_id]
    while frontier:
        children = list(await s.scalars(select(Folder.id).where(Folder.parent_id.in_(frontier))))
        found += children
        frontier = children
    return found


async def _media_counts(s: AsyncSession, ids: list[str]) -> dict[str, int]:
    if not ids:
        return {}
    rows = await s.execute(
        select(Media.folder_id, func.count())
        .where(Media.folder_id.in_(ids))
        .group_by(Media.folder_id)
    )
    return {str(folder): int(count) for folder, count in rows}


class FolderRepo:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create(self, environment_id: str, name: str, parent_id: str | None) -> Folder:
        row = Folder(
            id=new_id("fld"),
            environment_id=environment_id,
            parent_id=parent_id,
            name=name,
            created_at=datetime.now(UTC),
        )
        async with self._sessions.begin() as s:
            if parent_id is not None and not await folder_exists(s, environment_id, parent_id):
                raise UnknownFolder(parent_id)
            s.add(row)
        return row

    async def ensure_root(self, environment_id: str, name: str) -> str:
        """The id of the root folder called ``name``, created when there is none."""
        async with self._sessions() as s:
            found = await s.scalar(
                select(Folder.id)
                .where(
                    Folder.environment_id == environment_id,
                    Folder.parent_id.is_(None),
                    Folder.name == name,
                )
                .order_by(Folder.created_at, Folder.id)
                .limit(1)
            )
        if found is not None:
            return str(found)
        return (await self.create(environment_id, name, None)).id

    async def get(self, environment_id: str, folder_id: str) -> FolderView | None:
        async with self._sessions() as s:
            row = await s.scalar(
                select(Folder).where(
                    Folder.id == folder_id, Folder.environment_id == environment_id
                )
            )
            if row is None:
                return None
            return FolderView(row, (await _media_counts(s, [row.id])).get(row.id, 0))

    async def list(
        self, environment_id: str, limit: int, offset: int, parent_id: str | None = None
    ) -> Page[FolderView]:
        where = [Folder.environment_id == environment_id]
        if parent_id is not None:
            where.append(Folder.parent_id == parent_id)
        async with self._sessions() as s:
            total = await s.scalar(select(func.count()).select_from(Folder).where(*where))
            rows = list(
                await s.scalars(
                    select(Folder)
                    .where(*where)
                    .order_by(Folder.name, Folder.id)
                    .limit(limit)
                    .offset(offset)
                )
            )
            counts = await _media_counts(s, [r.id for r in rows])
        views = [FolderView(r, counts.get(r.id, 0)) for r in rows]
        return Page(items=views, total=int(total or 0))

    async def update(
        self, environment_id: str, folder_id: str, fields: Mapping[str, Any]
    ) -> FolderView | None:
        """Rename and/or move; ``parent_id`` None moves the folder to the root."""
        async with self._sessions.begin() as s:
            row = await s.scalar(
                select(Folder).where(
                    Folder.id == folder_id, Folder.environment_id == environment_id
                )
            )
            if row is None:
                return None
            if "parent_id" in fields and fields["parent_id"] is not None:
                parent = str(fields["parent_id"])
                if not await folder_exists(s, environment_id, parent):
                    raise UnknownFolder(parent)
                if parent in await _subtree(s, folder_id):
                    raise FolderCycle(parent)
            for name, value in fields.items():
                setattr(row, name, value)
        return await self.get(environment_id, folder_id)

    async def delete(self, environment_id: str, folder_id: str, recursive: bool) -> bool:
        """Delete a folder; with ``recursive`` also its subfolders, moving all their media
        to the root. False when unknown; FolderNotEmpty when it has contents and not recursive.
        """
        async with self._sessions.begin() as s:
            if not await folder_exists(s, environment_id, folder_id):
                return False
            ids = await _subtree(s, folder_id)
            if not recursive:
                has_media = await s.scalar(select(Media.id).where(Media.folder_id == folder_id))
                if has_media is not None or len(ids) > 1:
                    raise FolderNotEmpty(folder_id)
            await s.execute(update(Media).where(Media.folder_id.in_(ids)).values(folder_id=ROOT))
            await s.execute(update(Folder).where(Folder.id.in_(ids)).values(parent_id=ROOT))
            await s.execute(delete(Folder).where(Folder.id.in_(ids)))
        return True
