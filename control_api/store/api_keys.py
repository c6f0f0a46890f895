"""API keys: hashed secrets, looked up by hash, revoked by timestamp."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from control_api.credentials import display_prefix, hash_secret, new_api_key, new_id
from control_api.store.models import ApiKey


class ApiKeyRepo:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create(
        self, environment_id: str, name: str, access: str, cors_origins: list[str]
    ) -> tuple[ApiKey, str]:
        """Return the row and the secret; the secret exists nowhere else afterwards."""
        secret = new_api_key()
        row = ApiKey(
            id=new_id("key"),
            environment_id=environment_id,
            name=name,
            access=access,
            cors_origins=list(cors_origins),
            prefix=display_prefix(secret),
            secret_hash=hash_secret(secret),
            created_at=datetime.now(UTC),
        )
        async with self._sessions.begin() as s:
            s.add(row)
        return row, secret

    async def by_secret(self, secret: str) -> ApiKey | None:
        async with self._sessions() as s:
            return await s.scalar(
                select(ApiKey).where(
                    ApiKey.secret_hash == hash_secret(secret), ApiKey.revoked_at.is_(None)
                )
            )

    async def by_id(self, key_id: str, environment_id: str | None = None) -> ApiKey | None:
        query = select(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        if environment_id is not None:
            query = query.where(ApiKey.environment_id == environment_id)
        async with self._sessions() as s:
            return await s.scalar(query)

    async def list(self, environment_id: str | None = None) -> list[ApiKey]:
        query = select(ApiKey).where(ApiKey.revoked_at.is_(None)).order_by(ApiKey.created_at)
        if environment_id is not None:
            query = query.where(ApiKey.environment_id == environment_id)
        async with self._sessions() as s:
            return list(await s.scalars(query))

    async def revoke(self, key_id: str, environment_id: str | None = None) -> bool:
        query = update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        if environment_id is not None:
            query = query.where(ApiKey.environment_id == environment_id)
        async with self._sessions.begin() as s:
            result = await s.execute(query.values(revoked_at=datetime.now(UTC)))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def touch(self, key_id: str, when: datetime) -> None:
        async with self._sessions.begin() as s:
            await s.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=when))
