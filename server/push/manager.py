"""All pushers of the media plane: started with each session, matched by id.

The manager is a ``StreamObserver``: when a session opens it asks the control plane
(through :class:`~server.push.ports.DestinationSource`) for the stream's
destinations and starts one :class:`Pusher` per enabled one. API changes call
:meth:`PushManager.refresh`, which diffs by destination id: a new id starts a
pusher, a removed or disabled one stops only its own, a changed URL or key
reconnects only that one. List order never matters, so removing one destination
never restarts another.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from server.bus import Stream, StreamGrant
from server.logfields import media_fields
from server.settings import PushSettings
from server.tasks import BackgroundTasks

from .connect import Connect, Connector
from .groups import PushGroups
from .ports import DestinationSource, DestinationSpec, PushListener
from .pusher import Pusher
from .status import DestinationStatus

log = logging.getLogger("relaycast.push")


@dataclass(eq=False)
class _Live:
    """The pushers of one open session."""

    environment_id: str
    stream: Stream
    pushers: dict[str, Pusher] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class PushManager:
    def __init__(
        self,
        source: DestinationSource,
        settings: PushSettings,
        *,
        connect: Connect | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.settings = settings
        self.clock = clock
        self.connect: Connect = connect or Connector(settings)
        self.listeners: list[PushListener] = []
        # A stream's rendition by name (the transcoder's), for destinations that push one.
        self.renditions: Callable[[str, str], Stream | None] = lambda stream_id, name: None
        self._live: dict[str, _Live] = {}
        # the fanouts all pushers share: destinations of one stream chunk messages once
        self.groups = PushGroups(settings)
        self._tasks = BackgroundTasks(log, "push bookkeeping failed")

    # ------------------------------------------------------------ sessions

    def stream_opened(self, grant: StreamGrant, stream: Stream, session_id: str) -> None:
        """``StreamObserver``: a session opened; load and start its destinations."""
        self._forget_ended()
        self._live[grant.stream_id] = _Live(grant.environment_id, stream)
        self._tasks.spawn(self.refresh(grant.stream_id))

    def _forget_ended(self) -> None:
        for stream_id, live in list(self._live.items()):
            if live.stream.ended and all(p.done for p in live.pushers.values()):
                del self._live[stream_id]

    async def refresh(self, stream_id: str) -> None:
        """Bring the running pushers in line with the stored destinations.

        Called when a session opens and after every API change; a stream that is
        not live has nothing to do (its pushers start with the next session).
        """
        live = self._live.get(stream_id)
        if live is None or live.stream.ended:
            return
        async with live.lock:
            specs = {s.destination_id: s for s in await self.source.destinations(stream_id)}
            if self._live.get(stream_id) is not live or live.stream.ended:
                return
            for destination_id in list(live.pushers):
                spec = specs.get(destination_id)
                if spec is None or not spec.enabled:
                    self._tasks.spawn(live.pushers.pop(destination_id).stop())
            for spec in specs.values():
                if spec.enabled:
                    self._apply(stream_id, live, spec)

    def _apply(self, stream_id: str, live: _Live, spec: DestinationSpec) -> None:
        pusher = live.pushers.get(spec.destination_id)
        if pusher is None:
            pusher = Pusher(
                spec,
                live.stream,
                self.connect,
                self.settings,
                clock=self.clock,
                on_error=self._error_reporter(live.environment_id, stream_id, spec.destination_id),
                renditions=lambda name: self.renditions(stream_id, name),
                groups=self.groups,
            )
            live.pushers[spec.destination_id] = pusher
            pusher.start()
        elif pusher.spec.url != spec.url or pusher.spec.rendition != spec.rendition:
            pusher.log.info("push %s: destination changed, reconnecting", spec.destination_id)
            self._tasks.spawn(pusher.change(spec))

    def _error_reporter(
        self, environment_id: str, stream_id: str, destination_id: str
    ) -> Callable[[str], None]:
        def report(error: str) -> None:
            for listener in self.listeners:
                try:
                    listener.destination_error(environment_id, stream_id, destination_id, error)
                except Exception:  # webhooks must never break a push
                    log.exception(
                        "push listener failed",
                        extra=media_fields(stream_id, connection_id=destination_id),
                    )

        return report

    # ------------------------------------------------------------ queries

    def status(self, stream_id: str, destination_id: str) -> DestinationStatus | None:
        """The destination's live status, or None when no pusher runs for it (the
        stream is not live, or the destination is disabled)."""
        live = self._live.get(stream_id)
        pusher = live.pushers.get(destination_id) if live is not None else None
        return pusher.snapshot() if pusher is not None else None

    def statuses(self) -> list[tuple[str, str, DestinationStatus]]:
        """(stream id, destination id, status) of every pusher, for metrics."""
        return [
            (stream_id, destination_id, pusher.snapshot())
            for stream_id, live in self._live.items()
            for destination_id, pusher in live.pushers.items()
        ]

    # ------------------------------------------------------------ lifecycle

    async def shutdown(self) -> None:
        """Process stop: unpublish every destination (each bounded by close_timeout)."""
        pushers = [p for live in self._live.values() for p in live.pushers.values()]
        self._live.clear()
        await asyncio.gather(*(p.stop() for p in pushers), return_exceptions=True)
        await self._tasks.close()
        await self.groups.close()
