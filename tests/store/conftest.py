"""Every store test runs on SQLite and, when the test command started one, PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from control_api.store import Store

PG_URL = os.environ.get("PG_TEST_URL")


async def _fresh_pg_database(url: str) -> str:
    import asyncpg

    name = "relaycast_test_" + secrets.token_hex(4)
    dsn = url.replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url.rsplit("/", 1)[0] + "/" + name


async def _drop_pg_database(url: str) -> None:
    """Each test's database goes with it: a thousand leftovers make PostgreSQL's
    start-up after a crash fsync every one of them (minutes).

    The test's own connections are closed by then. A plain DROP waits for an
    autovacuum worker on the new database to leave (``WITH (FORCE)`` would have to
    terminate it, which this role may not); a server-side process still on it after
    a few tries leaves the database behind with a warning rather than failing a test
    that passed."""
    import asyncpg

    base, name = url.rsplit("/", 1)
    conn = await asyncpg.connect(base.replace("postgresql+asyncpg", "postgresql") + "/postgres")
    try:
        for _ in range(5):
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                return
            except asyncpg.ObjectInUseError:
                await asyncio.sleep(0.5)
        warnings.warn(f"test database {name} still in use: left behind", stacklevel=1)
    finally:
        await conn.close()


def require_pg_url() -> str:
    """The suite's PostgreSQL: a test that needs it fails under CI when it is missing."""
    if not PG_URL:
        message = "PG_TEST_URL is not set (scripts/test.sh starts PostgreSQL)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return PG_URL


@contextlib.asynccontextmanager
async def fresh_pg_database() -> AsyncIterator[str]:
    """A PostgreSQL database of the test's own, dropped after it."""
    url = await _fresh_pg_database(require_pg_url())
    try:
        yield url
    finally:
        await _drop_pg_database(url)


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        s = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
        yield s
        await s.close()
        return
    async with fresh_pg_database() as url:
        s = await Store.open(url)
        yield s
        await s.close()
