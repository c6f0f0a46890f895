"""Event sources that need an adapter: the push manager's destination errors.

The push manager (media plane) reports a destination in error through its
``PushListener`` hook, synchronously and with ids only. Loading the destination to
show it as the API does is a database read, so it runs in a task of its own and the
push manager's call returns at once.
"""

from __future__ import annotations

import logging

from control_api.store import Store
from server.tasks import BackgroundTasks

log = logging.getLogger("relaycast.webhooks")


class DestinationErrors:
    """``server.push.ports.PushListener`` → ``destination.error`` on the store's hub."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._tasks = BackgroundTasks(log, "announcing a destination error failed")

    def destination_error(
        self, environment_id: str, stream_id: str, destination_id: str, error: str
    ) -> None:
        self._tasks.spawn(
            self._announce(environment_id, stream_id, destination_id, error),
            name="webhook-destination-error",
        )

    async def _announce(
        self, environment_id: str, stream_id: str, destination_id: str, error: str
    ) -> None:
        row = await self._store.destinations.get(environment_id, stream_id, destination_id)
        if row is None:  # removed meanwhile: nobody to tell about it
            return
        log.debug("destination %s of %s in error: %s", destination_id, stream_id, error)
        self._store.events.emit("destination.error", environment_id, row)
