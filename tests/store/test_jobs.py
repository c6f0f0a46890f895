"""Background jobs run on one node at a time across nodes sharing PostgreSQL, and a
dead node's jobs are taken over (issue 22). Each "node" here is a ``Jobs`` of its own
(name and run) on one database, as two processes have."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from control_api.jobs import Jobs
from control_api.media_library.files import MediaFiles
from control_api.media_library.gates import UploadBusy, UploadGates, upload_job
from control_api.media_library.janitor import INTERRUPTED, recover_after_restart
from control_api.media_library.processor import Processor
from control_api.media_library.recordings import LibraryRecordings
from control_api.media_library.uploads import Uploads
from control_api.settings import MediaSettings, RecordingSettings
from control_api.store import Store
from control_api.store.directory import StoreDirectory
from control_api.store.nodes import NodeInfo
from control_api.store.uploads import NewUpload
from tests.store.conftest import fresh_pg_database
from tests.store.test_media_delete_race import GatedRemux, _recorded_item
from tests.store.test_recordings_store import (
    _recording,
    _stream,
    fragmented_mp4,  # noqa: F401 (a fixture)
)

LEASE = 15.0


@pytest.fixture
async def pg(tmp_path: Path) -> AsyncIterator[Store]:
    """Only PostgreSQL is shared by several nodes (on SQLite every job is the one process's)."""
    async with fresh_pg_database() as url:
        s = await Store.open(url)
        yield s
        await s.close()


def _lapse(store: Store, job: str, node: str) -> object:
    """``node`` held ``job`` and died: its claim's lease ran out a minute ago."""
    past = datetime.now(UTC) - timedelta(seconds=60)
    return store.jobs.take(job, node, "dead-run", past, LEASE)


async def test_one_node_takes_a_job_whoever_races_and_not_twice(store: Store) -> None:
    now = datetime.now(UTC)
    won = await asyncio.gather(
        *(store.jobs.take("probe:m1", f"n{i}", f"r{i}", now, LEASE) for i in range(6))
    )
    assert sum(won) == 1
    n = won.index(True)
    assert not await store.jobs.take("probe:m1", f"n{n}", f"r{n}", now, LEASE)  # not twice
    assert await store.jobs.take("probe:m1", f"n{n}", f"r{n}", now, LEASE, again=True)
    assert not await store.jobs.take("probe:m1", "other", "x", now, LEASE, again=True)
    await store.jobs.release("probe:m1", f"r{n}")
    assert await store.jobs.take("probe:m1", "other", "x", now, LEASE)


async def test_a_dead_node_s_job_lapses_and_heartbeats_keep_a_live_one(store: Store) -> None:
    t0 = datetime.now(UTC)
    assert await store.jobs.take("recordings:a", "a", "ra", t0, LEASE)
    assert await store.jobs.take("recordings:b", "b", "rb", t0, LEASE)
    later = t0 + timedelta(seconds=10)
    await store.nodes.heartbeat(NodeInfo("a", "local", "http://a", None, None), t0, later, LEASE)
    t1 = t0 + timedelta(seconds=20)  # b's lease is over, a's renewed one is not
    assert await store.jobs.lapsed("recordings:", t1) == ["recordings:b"]
    assert not await store.jobs.take("recordings:a", "c", "rc", t1, LEASE)
    assert await store.jobs.take("recordings:b", "c", "rc", t1, LEASE)
    # a node's next run takes its previous run's jobs at once; leaving drops them all
    assert await store.jobs.take("recordings:a", "a", "ra2", t1, LEASE)
    await store.nodes.leave("a")
    assert await store.jobs.take("recordings:a", "d", "rd", t1, LEASE)


async def test_the_sweep_is_led_by_one_node_until_it_dies(pg: Store) -> None:
    a, b = Jobs(pg, "a", LEASE), Jobs(pg, "b", LEASE)
    assert await a.lead("sweep:media")
    assert not await b.lead("sweep:media")
    assert await a.lead("sweep:media")  # every round, the same leader
    await _lapse(pg, "sweep:media", "a")
    assert await b.lead("sweep:media")
    assert not await a.lead("sweep:media")


async def test_two_nodes_probe_an_item_once(
    pg: Store,
    tmp_path: Path,
    fragmented_mp4: Path,  # noqa: F811
) -> None:
    files = MediaFiles(tmp_path / "data")
    remux = GatedRemux()
    row = await _recorded_item(pg, files, fragmented_mp4)
    a = Processor(pg, files, 1, remux=remux, jobs=Jobs(pg, "a", LEASE))
    b = Processor(pg, files, 1, remux=remux, jobs=Jobs(pg, "b", LEASE))
    first = asyncio.create_task(a.process(row.id))
    assert await asyncio.to_thread(remux.started.wait, 10)
    assert await b.process(row.id) is None  # a holds it: b does not probe it too
    remux.gate.set()
    assert await first == "ready"


async def test_a_dead_node_s_probe_is_taken_over(
    pg: Store,
    tmp_path: Path,
    fragmented_mp4: Path,  # noqa: F811
) -> None:
    files = MediaFiles(tmp_path / "data")
    remux = GatedRemux()
    remux.gate.set()
    row = await _recorded_item(pg, files, fragmented_mp4)
    await _lapse(pg, f"probe:{row.id}", "a")  # a died mid-probe
    b = Processor(pg, files, 1, remux=remux, jobs=Jobs(pg, "b", LEASE))
    await b.start()
    try:
        assert await b.take_over() == 1
        await asyncio.wait_for(b.idle(), 20)
    finally:
        await b.stop()
    item = await pg.media.by_id(row.id)
    assert item is not None and item.status == "ready"


async def test_an_import_is_failed_only_once_its_node_is_dead(pg: Store, tmp_path: Path) -> None:
    files = MediaFiles(tmp_path / "data")
    env, _ = await pg.environments.ensure("default")
    running = await pg.tasks.create(env.id, "media.import", {"url": "http://x/a.mp4"})
    orphan = await pg.tasks.create(env.id, "media.import", {"url": "http://x/b.mp4"})
    assert await pg.jobs.take(f"import:{running.id}", "a", "ra", datetime.now(UTC), LEASE)
    await _lapse(pg, f"import:{orphan.id}", "dead")
    b = Jobs(pg, "b", 0.05)  # a short lease: both tasks are past their first lease
    await asyncio.sleep(0.1)

    assert await recover_after_restart(pg, files, b) == 1

    kept = await pg.tasks.get(env.id, running.id)
    failed = await pg.tasks.get(env.id, orphan.id)
    assert kept is not None and kept.status == "pending"
    assert failed is not None and (failed.status, failed.error) == ("failed", INTERRUPTED)
    assert await recover_after_restart(pg, files, Jobs(pg, "c", 0.05)) == 0  # once


async def test_a_dead_node_s_recordings_are_finished_by_one_other_node(
    pg: Store,
    tmp_path: Path,
    fragmented_mp4: Path,  # noqa: F811
) -> None:
    env, stream_id = await _stream(pg)
    session_id = await StoreDirectory(pg.sessions).session_opened(
        stream_id, "rtmp", "1.2.3.4", datetime.now(UTC)
    )
    base = tmp_path / "recordings"
    files = MediaFiles(tmp_path / "data")
    catalog = LibraryRecordings(pg, files, RecordingSettings())
    a, b, c = Jobs(pg, "a", LEASE), Jobs(pg, "b", LEASE), Jobs(pg, "c", LEASE)
    assert await catalog.recover_own(a, base / "a", "a") == 0
    left = _recording(base / "a", env, stream_id, session_id, fragmented_mp4)
    assert await catalog.take_over(b, base) == 0  # a lives: what it writes is its own
    assert left.exists()

    await _lapse(pg, "recordings:a", "a")  # a dies
    finished = await asyncio.gather(catalog.take_over(b, base), catalog.take_over(c, base))
    assert sorted(finished) == [0, 1]
    assert not left.exists()
    session = await pg.stream_sessions.get(env, session_id)
    assert session is not None and session.recording_media_id is not None


async def test_an_upload_is_written_by_one_node_at_a_time(pg: Store) -> None:
    a, b = UploadGates(Jobs(pg, "a", LEASE)), UploadGates(Jobs(pg, "b", LEASE))
    async with a.hold("upl_1", None, 1.0):
        with pytest.raises(UploadBusy):
            async with b.hold("upl_1", None, 0.3):
                pass
    async with b.hold("upl_1", None, 0.3):  # let go: the other node's request goes on
        pass


async def test_a_restart_s_recovery_leaves_an_upload_another_node_writes(
    pg: Store, tmp_path: Path
) -> None:
    files = MediaFiles(tmp_path / "data")
    settings = MediaSettings()
    processor = Processor(pg, files, 1)
    env, _ = await pg.environments.ensure("default")
    row = await Uploads(pg, files, processor, settings).create(
        env.id, NewUpload(100, "", "x.mp4", None)
    )
    files.path(row.path).write_bytes(b"x" * 40)  # node a's PATCH is writing
    a, b = Jobs(pg, "a", LEASE), Jobs(pg, "b", LEASE)
    assert await a.take(upload_job(row.id))
    restarted = Uploads(pg, files, processor, settings)

    await restarted.recover(b)
    assert (await pg.uploads.unfinished())[0].received == 0  # not b's to record

    await _lapse(pg, upload_job(row.id), "a")  # a died mid-PATCH
    await restarted.recover(b)
    assert (await pg.uploads.unfinished())[0].received == 40
