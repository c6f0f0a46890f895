"""The session checkpoint's batched UPDATE on both databases (``SessionCheckpointer``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import cast

from control_api.checkpoints import SessionCheckpointer
from control_api.store import Store
from control_api.store.directory import StoreDirectory
from server.ingest.manager import IngestManager
from server.ingest.sessions import OpenSession
from tests.store.test_store import FIELDS


@dataclass
class OpenSessions:
    """The one thing a checkpoint asks of the ingest manager."""

    sessions: list[OpenSession] = field(default_factory=list)

    def open_sessions(self) -> list[OpenSession]:
        return self.sessions


async def test_a_checkpoint_saves_open_sessions_and_leaves_ended_ones(store: Store) -> None:
    env, _ = await store.environments.ensure("default")
    directory = StoreDirectory(store.sessions)
    t0 = datetime.now(UTC).replace(microsecond=0)
    ids = []
    for _ in range(3):
        stream, _ = await store.live_streams.create(env.id, FIELDS)
        ids.append(await directory.session_opened(stream.id, "rtmp", "127.0.0.1:1", t0))
    await directory.session_closed(stream.id, ids[2], t0 + timedelta(seconds=1), 7, None)
    seen = t0 + timedelta(seconds=5)
    ingest = OpenSessions([OpenSession(sid, 1000 * (i + 1), seen) for i, sid in enumerate(ids)])
    adopted = {ids[1]: 500}
    checkpoints = SessionCheckpointer(store, cast(IngestManager, ingest), 2.0, adopted)
    assert await checkpoints.checkpoint() == 3
    rows = [await store.stream_sessions.get(env.id, sid) for sid in ids]
    assert [row.bytes_in if row else None for row in rows] == [1000, 2500, 7]
    assert rows[0] is not None and rows[0].last_seen_at == seen
    assert (
        await SessionCheckpointer(store, cast(IngestManager, OpenSessions()), 2.0).checkpoint() == 0
    )
