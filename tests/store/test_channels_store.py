"""The scheduler's look at the channels (``ChannelRepo.active``) on both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from control_api.channels import StoreChannels
from control_api.media_library.files import MediaFiles
from control_api.store import Store
from control_api.store.directory import StoreDirectory
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
