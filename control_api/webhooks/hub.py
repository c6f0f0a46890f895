"""The hub where committed changes are announced (kept free of store imports: the
store creates one).

Sources (the ingest directory, the media library, the push manager's adapter) call
:meth:`EventHub.emit` right after their database change commits. The call never
blocks and never raises: it runs on the media plane's paths, and an event must not
cost an encoder anything.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from control_api.webhooks.events import EventType, Resource

log = logging.getLogger("relaycast.webhooks")


class EventListener(Protocol):
    def event(self, type_: EventType, environment_id: str, resource: Resource) -> None:
        """Take an event; must return at once and must not raise."""


class EventHub:
    """Fan-out from sources to listeners (the webhook dispatcher, later metrics)."""

    def __init__(self) -> None:
        self.listeners: list[EventListener] = []

    def emit(self, type_: EventType, environment_id: str, resource: Resource) -> None:
        for listener in list(self.listeners):
            try:
                listener.event(type_, environment_id, resource)
            except Exception:  # a listener's bug must not break ingest or the library
                log.exception("event listener failed on %s", type_)
