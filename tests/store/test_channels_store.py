"""The scheduler's look at the channels (``ChannelRepo.active``) on both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, update

from control_api.channels import StoreChannels
from control_api.media_library.files import MediaFiles
from control_api.store import Store
from control_api.store.directory import StoreDirectory
from control_api.store.models import LiveStream
from server.settings import PlayoutSettings

FIELDS = dict(
    name="c",
    quality="passthrough",
    low_latency=True,
    recording=False,
    reconnect_window_seconds=60,
    playback_policy="public",
    plan="basic",
    region="local",
    source="queue",
)


async def test_active_reads_only_columns_and_gives_the_same_channels(
    store: Store, tmp_path: Path
) -> None:
    env, _ = await store.environments.ensure("default")
    on, _ = await store.live_streams.create(
        env.id, {**FIELDS, "loop": True, "profile": {"width": 640, "height": 360}}
    )
    start = datetime(2026, 12, 7, 22, 0, tzinfo=UTC)
    scheduled, _ = await store.live_streams.create(
        env.id, {**FIELDS, "scheduled_start": start, "schedule_repeat": "daily"}
    )
    await store.live_streams.create(env.id, FIELDS)  # off, no schedule: not looked at
    await store.live_streams.create(env.id, {**FIELDS, "source": "encoder"})
    await store.channels.set_on(on.id, True, start)
    await store.channels.save_state(on.id, "qi_1", 12.5, 3)

    directory = StoreChannels(
        store, StoreDirectory(store.sessions), MediaFiles(tmp_path), PlayoutSettings()
    )
    found = {c.stream_id: c for c in await directory.channels()}
    assert set(found) == {on.id, scheduled.id}
    for stream_id, channel in found.items():
        assert channel == await directory.channel(stream_id)  # from the whole row
    assert found[on.id].on and found[on.id].loop and found[on.id].window_start == start
    assert found[on.id].profile.width == 640 and found[on.id].profile.fps == 30
    assert (found[on.id].state.item_id, found[on.id].state.position) == ("qi_1", 12.5)
    assert found[on.id].state.loops == 3
    assert found[scheduled.id].schedule.start == start and not found[scheduled.id].on


def _count_selects(store: Store) -> list[str]:
    """Every statement the engine runs from now on that reads ``live_streams``."""
    seen: list[str] = []

    def executed(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "live_streams" in statement and statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", executed)
    return seen


async def _on_ids(store: Store) -> set[str]:
    return {row.id for row in await store.channels.active() if row.playout_on}


async def test_active_is_read_again_only_after_live_streams_is_written(store: Store) -> None:
    """One process's SQLite: the scheduler's look once a second answers from the last
    read until some write to ``live_streams`` (any path: repository, ORM session, Core);
    a database other nodes write (PostgreSQL) is read every time."""
    env, _ = await store.environments.ensure("default")
    a, _ = await store.live_streams.create(env.id, FIELDS)
    selects = _count_selects(store)
    assert await _on_ids(store) == set()
    assert await _on_ids(store) == set()
    shared = store.shared
    assert len(selects) == (2 if shared else 1)

    await store.channels.set_on(a.id, True, None)  # the repository
    assert await _on_ids(store) == {a.id}
    b, _ = await store.live_streams.create(env.id, FIELDS)
    async with store.sessions.begin() as s:  # an ORM session
        await s.execute(update(LiveStream).where(LiveStream.id == b.id).values(playout_on=True))
    assert await _on_ids(store) == {a.id, b.id}
    async with store.engine.begin() as conn:  # Core on a connection of its own
        await conn.execute(update(LiveStream).where(LiveStream.id == a.id).values(playout_on=False))
    assert await _on_ids(store) == {b.id}
    before = len(selects)
    assert await _on_ids(store) == {b.id}
    assert len(selects) == before + (1 if shared else 0)


async def test_a_read_during_an_open_write_is_not_kept(store: Store) -> None:
    """A write executed but not committed yet: a read meanwhile sees the old rows (WAL)
    and must not be kept, or the commit would never be seen."""
    env, _ = await store.environments.ensure("default")
    a, _ = await store.live_streams.create(env.id, FIELDS)
    async with store.engine.connect() as writer:
        await writer.execute(
            update(LiveStream).where(LiveStream.id == a.id).values(playout_on=True)
        )
        assert await _on_ids(store) == set()  # not committed yet
        assert await _on_ids(store) == set()
        await writer.commit()
    assert await _on_ids(store) == {a.id}
    async with store.engine.connect() as writer:  # rolled back: the old answer again
        await writer.execute(
            update(LiveStream).where(LiveStream.id == a.id).values(playout_on=False)
        )
        await writer.rollback()
    assert await _on_ids(store) == {a.id}
