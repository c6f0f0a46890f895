"""Server-side signing secrets, created on first start and kept in the database.

Several nodes sharing PostgreSQL must verify each other's tokens, so the secret
lives in the shared store rather than in a local file.
"""

from __future__ import annotations

import secrets as _random

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from control_api.store.models import ServerSecret


async def signing_key(sessions: async_sessionmaker[AsyncSession], name: str) -> bytes:
    async with sessions() as s:
        row = await s.scalar(select(ServerSecret).where(ServerSecret.name == name))
    if row is not None:
        return bytes.fromhex(row.value)
    value = _random.token_hex(32)
    try:
        async with sessions.begin() as s:
            s.add(ServerSecret(name=name, value=value))
    except IntegrityError:  # another node won the race: use theirs
        return await signing_key(sessions, name)
    return bytes.fromhex(value)
