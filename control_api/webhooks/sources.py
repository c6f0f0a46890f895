"""Event sources that need an adapter: the push manager's destination errors.

The push manager (media plane) reports a destination in error through its
``PushListener`` hook, synchronously and with ids only. Loading the destination to
show it as the API does is a database read, so it runs in a task of its own and the
push manager's call returns at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from control_api.store import Store

log = logging.getLogger("relaycast.webhooks")


class DestinationErrors:
    """``server.push.ports.PushListener`` → ``destination.error`` on the store's hub."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._tasks: set[asyncio.Task[None]] = set()

    def destination_error(
        self, environment_id: str, stream_id: str, destination_id: str, error: str
    ) -> None:
        self._spawn(self._announce(environment_id, stream_id, destination_id, error))

    async def _announce(
        self, environment_id: str, stream_id: str, destination_id: str, error: str
    ) -> None:
        row = await self._store.destinations.get(environment_id, stream_id, destination_id)
        if row is None:  # removed meanwhile: nobody to tell about it
            return
        log.debug("destination %s of %s in error: %s", destination_id, stream_id, error)
        self._store.events.emit("destination.error", environment_id, row)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro, name="webhook-destination-error")
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("announcing a destination error failed", exc_info=task.exception())
