"""Tasks: background work (URL imports) that a caller follows by id."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from control_api.credentials import new_id
from control_api.store.models import Task

UNFINISHED = ("pending", "running")


class TaskRepo:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create(self, environment_id: str, type_: str, params: dict[str, Any]) -> Task:
        now = datetime.now(UTC)
        row = Task(
            id=new_id("tsk"),
            environment_id=environment_id,
            type=type_,
            status="pending",
            progress=0.0,
            params=params,
            created_at=now,
            updated_at=now,
        )
        async with self._sessions.begin() as s:
            s.add(row)
        return row

    async def get(self, environment_id: str, task_id: str) -> Task | None:
        async with self._sessions() as s:
            return await s.scalar(
                select(Task).where(Task.id == task_id, Task.environment_id == environment_id)
            )

    async def update(self, task_id: str, **fields: Any) -> None:
        async with self._sessions.begin() as s:
            await s.execute(
                update(Task)
                .where(Task.id == task_id)
                .values(updated_at=datetime.now(UTC), **fields)
            )

    async def unfinished(self) -> list[Task]:
        async with self._sessions() as s:
            return list(await s.scalars(select(Task).where(Task.status.in_(UNFINISHED))))
