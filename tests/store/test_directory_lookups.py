"""StoreDirectory.authorize: callers presenting one key at once share one query."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event

from control_api.store import Store
from control_api.store.directory import StoreDirectory
from tests.store.test_store import FIELDS


def _count_stream_lookups(store: Store) -> list[str]:
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "stream_key_hash" in statement:
            seen.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", before)
    return seen


async def test_concurrent_lookups_of_one_key_share_a_query_and_nothing_is_cached(
    store: Store,
) -> None:
    env, _ = await store.environments.ensure("default")
    row, key = await store.live_streams.create(env.id, FIELDS)
    directory = StoreDirectory(store.sessions)
    queries = _count_stream_lookups(store)
    answers = await asyncio.gather(
        *(directory.authorize(key) for _ in range(50)),
        *(directory.authorize("sk_nope") for _ in range(50)),
    )
    assert [a.stream_id if a else None for a in answers] == [row.id] * 50 + [None] * 50
    assert len(queries) == 2
    # a key rotated after the answer is seen by the next caller
    await store.live_streams.rotate_key(env.id, row.id, force=True)
    queries.clear()
    assert await directory.authorize(key) is None
    assert len(queries) == 1


async def test_a_caller_giving_up_does_not_cancel_the_others(store: Store) -> None:
    env, _ = await store.environments.ensure("default")
    row, key = await store.live_streams.create(env.id, FIELDS)
    directory = StoreDirectory(store.sessions)
    first = asyncio.create_task(directory.authorize(key))
    second = asyncio.create_task(directory.authorize(key))
    await asyncio.sleep(0)
    first.cancel()
    grant = await second
    assert grant is not None and grant.stream_id == row.id
    assert first.cancelled()
