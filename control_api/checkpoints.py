"""Open sessions' byte counts and last activity, saved every few seconds.

``bytesIn`` and the end time are written when a session closes; a crash never closes
it. Saving the running count and when the encoder was last heard from periodically
lets the restart's reconciliation end the session where it really stopped, losing at
most one interval (``diagnostics.session_checkpoint_seconds``). Each tick is one
batched UPDATE (executemany) for all open sessions, off the ingest path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from sqlalchemy import bindparam, update

from control_api.store import Store
from control_api.store.models import StreamSession
from server.ingest.manager import IngestManager

log = logging.getLogger("relaycast.diagnostics")

_SAVE = (
    update(StreamSession)
    .where(StreamSession.id == bindparam("sid"), StreamSession.ended_at.is_(None))
    .values(bytes_in=bindparam("bytes"), last_seen_at=bindparam("seen"))
)
"""One batched UPDATE (executemany) of every open session's count and last activity."""


class SessionCheckpointer:
    def __init__(
        self,
        store: Store,
        ingest: IngestManager,
        interval: float,
        adopted: Mapping[str, int] | None = None,
    ) -> None:
        """``adopted``: the bytes sessions continued from another node had there."""
        self.store = store
        self.ingest = ingest
        self.interval = interval
        self.adopted = adopted if adopted is not None else {}
        self._task: asyncio.Task[None] | None = None

    async def checkpoint(self) -> int:
        """Save every open session's bytes now; returns how many sessions were saved."""
        sessions = self.ingest.open_sessions()
        if not sessions:
            return 0
        # Core on a connection of its own: an ORM session around the same executemany
        # doubled the CPU of a checkpoint (a tick every 2 s while any stream is live)
        async with self.store.engine.begin() as conn:
            await conn.execute(
                _SAVE,
                [
                    {
                        "sid": o.session_id,
                        "bytes": o.bytes_in + self.adopted.get(o.session_id, 0),
                        "seen": o.last_seen,
                    }
                    for o in sessions
                ],
            )
        return len(sessions)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.checkpoint()
            except Exception:  # next interval tries again; a crash between loses one interval
                log.exception("could not checkpoint session byte counts")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
