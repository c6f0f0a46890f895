"""Open sessions' bytesIn is saved periodically, so a crash-closed session keeps it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from control_api.checkpoints import SessionCheckpointer
from control_api.store.directory import StoreDirectory
from server.bus import Registry
from server.ingest.manager import IngestManager
from tests.api.conftest import Api


@dataclass
class Publisher:
    protocol: str = "rtmp"
    remote: str = "127.0.0.1:40000"

    def close(self, reason: str) -> None:
        pass


async def _session(api: Api, stream_id: str) -> tuple[int, bool]:
    page = await api.store.stream_sessions.list_for_stream(stream_id, 10, 0)
    row = page.items[0]
    return row.bytes_in, row.ended_at is not None


async def test_checkpoint_then_crash_reconcile_keeps_the_bytes(api: Api) -> None:
    ingest = IngestManager(StoreDirectory(api.store.sessions), Registry(), api.settings.ingest)
    stream = await api.new_stream()
    claim = await ingest.claim(stream["ingest"]["streamKey"], Publisher())
    claim.received(12_345, time.monotonic())
    checkpoints = SessionCheckpointer(api.store, ingest, interval=3600)
    assert await checkpoints.checkpoint() == 1
    claim.received(1000, time.monotonic())  # after the checkpoint: lost in a crash

    # the process dies here: no session_closed; the next start reconciles
    assert (await api.store.reconcile_after_restart())[0] == 1
    assert await _session(api, stream["streamId"]) == (12_345, True)


async def test_a_crashed_session_ends_at_its_last_activity_not_at_the_restart(api: Api) -> None:
    ingest = IngestManager(StoreDirectory(api.store.sessions), Registry(), api.settings.ingest)
    stream = await api.new_stream()
    claim = await ingest.claim(stream["ingest"]["streamKey"], Publisher())
    claim.received(1000, time.monotonic())
    heard = datetime.now(UTC)
    await asyncio.sleep(0.3)  # silence before the checkpoint is not activity
    await SessionCheckpointer(api.store, ingest, interval=3600).checkpoint()
    await asyncio.sleep(1.0)  # the process is dead meanwhile
    await api.store.reconcile_after_restart()
    [session] = (await api.store.stream_sessions.list_for_stream(stream["streamId"], 10, 0)).items
    ended = await api.store.live_streams.get(session.environment_id, stream["streamId"])
    assert session.ended_at is not None and ended is not None and ended.ended_at is not None
    assert abs((session.ended_at - heard).total_seconds()) < 0.1
    assert ended.state == "ended" and ended.ended_at == session.ended_at


async def test_a_closed_session_is_never_overwritten(api: Api) -> None:
    ingest = IngestManager(StoreDirectory(api.store.sessions), Registry(), api.settings.ingest)
    stream = await api.new_stream()
    claim = await ingest.claim(stream["ingest"]["streamKey"], Publisher())
    claim.received(500, time.monotonic())
    session_id = ingest.open_sessions()[0][0]
    await api.store.reconcile_after_restart()  # closes it (bytes 0) behind ingest's back
    checkpoints = SessionCheckpointer(api.store, ingest, interval=3600)
    await checkpoints.checkpoint()
    assert await _session(api, stream["streamId"]) == (0, True)
    assert [(o.session_id, o.bytes_in) for o in ingest.open_sessions()] == [(session_id, 500)]


async def test_the_background_task_saves_on_its_interval(api: Api) -> None:
    ingest = IngestManager(StoreDirectory(api.store.sessions), Registry(), api.settings.ingest)
    stream = await api.new_stream()
    claim = await ingest.claim(stream["ingest"]["streamKey"], Publisher())
    claim.received(777, time.monotonic())
    checkpoints = SessionCheckpointer(api.store, ingest, interval=0.05)
    checkpoints.start()
    try:
        for _ in range(100):
            if (await _session(api, stream["streamId"]))[0] == 777:
                break
            await asyncio.sleep(0.02)
    finally:
        await checkpoints.stop()
    assert await _session(api, stream["streamId"]) == (777, False)
    assert (
        await SessionCheckpointer(
            api.store,
            IngestManager(StoreDirectory(api.store.sessions), Registry(), api.settings.ingest),
            1,
        ).checkpoint()
        == 0
    )
