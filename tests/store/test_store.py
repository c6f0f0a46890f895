"""The store on both databases: migrations match the models; repositories behave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from control_api.store import Store
from control_api.store.db import migrate
from control_api.store.live_streams import StreamBusy
from control_api.store.models import Base, StreamSession

FIELDS = dict(
    name="s",
    quality="passthrough",
    low_latency=True,
    recording=False,
    reconnect_window_seconds=60,
    playback_policy="public",
    plan="basic",
    region="local",
)


def _diff(conn: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


async def test_migrations_match_models_and_are_idempotent(store: Store) -> None:
    await migrate(store.engine)
    async with store.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []


async def test_keys_by_hash_and_revocation(store: Store) -> None:
    env, created = await store.environments.ensure("default")
    assert created and (await store.environments.ensure("default"))[1] is False
    row, secret = await store.api_keys.create(env.id, "k", "restricted", ["https://a.example"])
    found = await store.api_keys.by_secret(secret)
    assert found is not None and found.id == row.id and found.cors_origins == ["https://a.example"]
    assert secret not in row.secret_hash
    other_env, _ = await store.environments.ensure("other")
    assert not await store.api_keys.revoke(row.id, other_env.id)
    assert await store.api_keys.revoke(row.id, env.id)
    assert await store.api_keys.by_secret(secret) is None
    assert not await store.api_keys.revoke(row.id, env.id)


async def test_stream_lifecycle_and_conflicts(store: Store) -> None:
    env, _ = await store.environments.ensure("default")
    row, key = await store.live_streams.create(env.id, FIELDS)
    assert row.created_at.tzinfo is not None
    assert (await store.live_streams.by_key(key)).id == row.id  # type: ignore[union-attr]
    await store.live_streams.update(env.id, row.id, {"state": "live"})
    with pytest.raises(StreamBusy):
        await store.live_streams.delete(env.id, row.id)
    with pytest.raises(StreamBusy):
        await store.live_streams.rotate_key(env.id, row.id, force=False)
    new_key = await store.live_streams.rotate_key(env.id, row.id, force=True)
    assert new_key and await store.live_streams.by_key(key) is None
    assert await store.live_streams.rotate_key(env.id, "ls_missing", force=True) is None
    await store.live_streams.update(env.id, row.id, {"state": "ended"})
    assert await store.live_streams.delete(env.id, row.id)
    assert not await store.live_streams.delete(env.id, row.id)


async def test_pagination_is_stable(store: Store) -> None:
    env, _ = await store.environments.ensure("default")
    ids = {(await store.live_streams.create(env.id, FIELDS))[0].id for _ in range(7)}
    seen = []
    for offset in range(0, 7, 3):
        page = await store.live_streams.list(env.id, 3, offset)
        assert page.total == 7
        seen += [r.id for r in page.items]
    assert sorted(seen) == sorted(ids)


async def test_reconcile_after_restart(store: Store) -> None:
    env, _ = await store.environments.ensure("default")
    row, _ = await store.live_streams.create(env.id, FIELDS)
    await store.live_streams.update(env.id, row.id, {"state": "live"})
    started = datetime.now(UTC) - timedelta(minutes=5)
    async with store.sessions.begin() as s:
        s.add(
            StreamSession(
                id="ses_1",
                stream_id=row.id,
                environment_id=env.id,
                protocol="rtmp",
                started_at=started,
                bytes_in=10,
            )
        )
    assert await store.reconcile_after_restart() == (1, 1)
    session = await store.stream_sessions.get(env.id, "ses_1")
    assert session is not None and session.ended_at is not None
    assert (await store.live_streams.get(env.id, row.id)).state == "ended"  # type: ignore[union-attr]
    assert await store.reconcile_after_restart() == (0, 0)


async def test_reconcile_ends_at_the_last_checkpoint_and_announces_once(store: Store) -> None:
    env, _ = await store.environments.ensure("default")
    row, _ = await store.live_streams.create(env.id, FIELDS)
    await store.live_streams.update(env.id, row.id, {"state": "live"})
    started = datetime.now(UTC) - timedelta(hours=2)
    seen = started + timedelta(minutes=30)  # then the process died; restarted 90 min later
    async with store.sessions.begin() as s:
        s.add(
            StreamSession(
                id="ses_1",
                stream_id=row.id,
                environment_id=env.id,
                protocol="rtmp",
                started_at=started,
                bytes_in=10,
                last_seen_at=seen,
            )
        )
    heard: list[tuple[str, str, str]] = []

    class Listener:
        def event(self, type_: str, environment_id: str, resource: object) -> None:
            heard.append((type_, environment_id, getattr(resource, "id", "")))

    store.events.listeners.append(Listener())  # type: ignore[arg-type]
    assert await store.reconcile_after_restart() == (1, 1)
    assert await store.reconcile_after_restart() == (0, 0)
    session = await store.stream_sessions.get(env.id, "ses_1")
    stream = await store.live_streams.get(env.id, row.id)
    assert session is not None and stream is not None
    assert session.ended_at == seen and stream.ended_at == seen
    assert heard == [("stream.ended", env.id, row.id)]


async def test_reconcile_never_ends_a_stream_before_it_went_live(store: Store) -> None:
    env, _ = await store.environments.ensure("default")
    row, _ = await store.live_streams.create(env.id, FIELDS)
    opened = datetime.now(UTC) - timedelta(minutes=10)
    went_live = opened + timedelta(seconds=1)  # the process died before a checkpoint
    await store.live_streams.update(env.id, row.id, {"state": "live", "started_at": went_live})
    async with store.sessions.begin() as s:
        s.add(
            StreamSession(
                id="ses_1",
                stream_id=row.id,
                environment_id=env.id,
                protocol="srt",
                started_at=opened,
                bytes_in=0,
            )
        )
    assert await store.reconcile_after_restart() == (1, 1)
    session = await store.stream_sessions.get(env.id, "ses_1")
    stream = await store.live_streams.get(env.id, row.id)
    assert session is not None and stream is not None
    assert session.ended_at == opened and stream.ended_at == went_live


async def test_signing_key_is_created_once(store: Store) -> None:
    first = await store.token_signing_key()
    assert len(first) == 32 and await store.token_signing_key() == first
