"""Environments: the tenancy boundary every resource and key belongs to."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from control_api.credentials import new_id
from control_api.store.models import Environment

DEFAULT_ENVIRONMENT = "default"


class EnvironmentRepo:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def list(self) -> list[Environment]:
        async with self._sessions() as s:
            rows = await s.scalars(select(Environment).order_by(Environment.created_at))
            return list(rows)

    async def get_by_name(self, name: str) -> Environment | None:
        async with self._sessions() as s:
            return await s.scalar(select(Environment).where(Environment.name == name))

    async def create(self, name: str) -> Environment:
        env = Environment(id=new_id("env"), name=name, created_at=datetime.now(UTC))
        async with self._sessions.begin() as s:
            s.add(env)
        return env

    async def ensure(self, name: str) -> tuple[Environment, bool]:
        """Get or create; the flag says whether it was created."""
        found = await self.get_by_name(name)
        if found is not None:
            return found, False
        return await self.create(name), True

    async def count(self) -> int:
        return len(await self.list())
