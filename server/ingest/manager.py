"""Who is publishing what: stream-key auth, one publisher per key, takeover, sessions.

Every ingest protocol goes through this one object, so RTMP and SRT publishers obey
the same rules: a key opens one stream; a second publisher is refused unless the
first has gone silent; a publisher that drops may come back within the stream's
reconnect window and continue the same session; then the session ends.

This module holds the orchestration (claim, takeover, resume, end); what a session
keeps and its reconnect window are in ``sessions``, why and how refusals are
reported in ``refusals``, the figures health shows in ``health``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

from server.bus import Registry, StreamGrant
from server.ingest.claim import Claim as Claim
from server.ingest.health import (
    EncoderHealth,
    IngestMeter,
    ReportsLinkHealth,
    audio_figures,
    video_figures,
)
from server.ingest.ports import (
    Fallback,
    Publisher,
    PublisherClaims,
    RefusalSink,
    SoleNode,
    StreamDirectory,
    StreamObserver,
)
from server.ingest.refusals import RefusalReason, RefusalReporter, Refused
from server.ingest.sessions import Live, OpenSession, connection_id
from server.logsample import SampledLog
from server.settings import IngestSettings
from server.tasks import BackgroundTasks

log = logging.getLogger("relaycast.ingest")


_REFUSAL_DETAIL = {
    RefusalReason.UNKNOWN_KEY: "unknown stream key",
    RefusalReason.STOPPED: "stream is stopped",
    RefusalReason.IN_USE: "stream key already in use",
}


def _refused(reason: RefusalReason) -> Refused:
    return Refused(reason, _REFUSAL_DETAIL[reason])


TAKEN_OVER = "taken over by an encoder"
"""The reason a yielding publisher (playout) is closed with when an encoder arrives."""


def _yields(publisher: Publisher) -> bool:
    """Playout gives way to an encoder publishing with the channel's key."""
    return bool(getattr(publisher, "yields_to_encoder", False))


class IngestManager:
    def __init__(
        self,
        directory: StreamDirectory,
        registry: Registry,
        settings: IngestSettings,
        clock: Callable[[], float] = time.monotonic,
        observers: Sequence[StreamObserver] = (),
        refusal_sinks: Sequence[RefusalSink] = (),
        claims: PublisherClaims | None = None,
    ) -> None:
        self.directory = directory
        self.claims: PublisherClaims = claims or SoleNode()
        self.registry = registry
        self.settings = settings
        self.clock = clock
        sampled = SampledLog(log, settings.refusal_log_per_second, "refused-publish lines", clock)
        self.refusals = RefusalReporter(sampled, refusal_sinks)
        self.observers: list[StreamObserver] = list(observers)
        self.fallbacks: dict[str, Fallback] = {}
        """Per stream id, what publishes when its encoder leaves (a channel's playout)."""
        self._live: dict[str, Live] = {}
        self._tasks = BackgroundTasks(log, "ingest bookkeeping failed")

    # ------------------------------------------------------------ claiming

    async def claim(
        self,
        stream_key: str,
        publisher: Publisher,
        attempted: str = "",
        check: Callable[[StreamGrant], Refused | None] | None = None,
    ) -> Claim:
        """Authenticate a publisher; raise Refused (counted) when it may not publish.

        ``attempted`` is what the encoder sent, key masked, for the refusal log.
        ``check`` is the protocol's own test of the grant (SRT: the passphrase), run
        before anything is opened or taken over, so a refused encoder leaves no trace
        on the stream.
        """
        grant = await self.directory.authorize(stream_key)
        if grant is None:
            raise self._refuse(publisher, attempted, _refused(RefusalReason.UNKNOWN_KEY), None)
        return await self.claim_grant(grant, publisher, attempted, check)

    async def claim_grant(
        self,
        grant: StreamGrant,
        publisher: Publisher,
        attempted: str = "",
        check: Callable[[StreamGrant], Refused | None] | None = None,
    ) -> Claim:
        """``claim`` for a grant already resolved: a channel's playout has no key to show.

        A publisher that ``yields_to_encoder`` (playout) is replaced at once by one that
        does not (live takeover); the stream's fallback gets it back when that one goes.
        """
        if not grant.enabled:
            raise self._refuse(publisher, attempted, _refused(RefusalReason.STOPPED), grant)
        failed = check(grant) if check is not None else None
        if failed is not None:
            raise self._refuse(publisher, attempted, failed, grant)
        live = self._live.get(grant.stream_id)
        if live is None:
            if not await self.claims.take(grant.stream_id):
                raise self._refuse(publisher, attempted, _refused(RefusalReason.IN_USE), grant)
            live = self._live.get(grant.stream_id)  # opened here while we asked?
        if live is None:
            return await self._open(grant, publisher)
        if live.publisher is not None and _yields(live.publisher) and not _yields(publisher):
            log.info(
                "stream %s: %s publisher takes over from playout",
                grant.stream_id,
                publisher.protocol,
                extra=live.log_fields(publisher),
            )
            live.publisher.close(TAKEN_OVER)
            live.stream.mark_discontinuity()
        elif live.publisher is not None:
            silent = self.clock() - live.meter.last_activity
            if silent < self.settings.takeover_silence_seconds:
                raise self._refuse(publisher, attempted, _refused(RefusalReason.IN_USE), grant)
            log.info(
                "stream %s: publisher silent %.1fs, taken over",
                grant.stream_id,
                silent,
                extra=live.log_fields(publisher),
            )
            live.publisher.close("taken over by a new publisher")
        return self._resume(live, grant, publisher)

    def _refuse(
        self, publisher: Publisher, attempted: str, refused: Refused, grant: StreamGrant | None
    ) -> Refused:
        """Report a refusal of the claim; returns it, for the caller to raise."""
        self.refusals.report(
            publisher.protocol,
            publisher.remote,
            attempted,
            refused.reason,
            str(refused),
            grant,
            connection=connection_id(publisher),
        )
        return refused

    async def _open(self, grant: StreamGrant, publisher: Publisher) -> Claim:
        stream = self.registry.create(grant.stream_id)
        live = Live(grant=grant, stream=stream, publisher=publisher, last_publisher=publisher)
        live.meter.last_activity = self.clock()
        self._live[grant.stream_id] = live
        try:
            live.session_id = await self.directory.session_opened(
                grant.stream_id, publisher.protocol, publisher.remote, live.connected_at
            )
        except BaseException:
            self._forget(live, "session could not be recorded")
            raise
        live.opened.set()
        for observer in self.observers:
            observer.stream_opened(grant, stream, live.session_id)
        log.info(
            "stream %s: %s publisher %s connected, session %s",
            grant.stream_id,
            publisher.protocol,
            publisher.remote,
            live.session_id,
            extra=live.log_fields(),
        )
        return Claim(self, live, publisher)

    def _resume(self, live: Live, grant: StreamGrant, publisher: Publisher) -> Claim:
        if live.close_window():
            live.stream.mark_discontinuity()
            log.info(
                "stream %s: publisher back inside the reconnect window",
                grant.stream_id,
                extra=live.log_fields(publisher),
            )
        live.grant = grant
        live.publisher = live.last_publisher = publisher
        live.left_at = None
        live.meter = IngestMeter(last_activity=self.clock())
        live.connected_at = datetime.now(UTC)
        return Claim(self, live, publisher)

    # ------------------------------------------------------------ transitions

    def went_live(self, live: Live) -> None:
        live.live = True
        self._tasks.spawn(self._mark_live(live))

    async def _mark_live(self, live: Live) -> None:
        await live.opened.wait()
        await self.directory.stream_live(live.grant.stream_id, datetime.now(UTC))
        log.info("stream %s: live", live.grant.stream_id, extra=live.log_fields())

    def fail(self, live: Live, reason: str) -> None:
        """Ingest broke the plan's limits: disconnect and end the session in ``error``."""
        publisher = live.drop_publisher(self.clock())
        log.warning(
            "stream %s: %s; disconnecting",
            live.grant.stream_id,
            reason,
            extra=live.log_fields(publisher),
        )
        if publisher is not None:
            self.refusals.report(
                publisher.protocol,
                publisher.remote,
                "",
                RefusalReason.LIMITS,
                reason,
                live.grant,
                connection=connection_id(publisher),
            )
            publisher.close(reason)
        self._tasks.spawn(self._end(live, reason, error=reason))

    def release(self, claim: Claim, reason: str) -> None:
        """The publisher's connection is gone; start the reconnect window or end."""
        live = claim.live
        if not claim.current or self._live.get(live.grant.stream_id) is not live:
            return
        live.drop_publisher(self.clock())
        window = live.grant.reconnect_window_seconds
        log.info(
            "stream %s: publisher gone (%s)",
            live.grant.stream_id,
            reason,
            extra=live.log_fields(claim.publisher),
        )
        fallback = self.fallbacks.get(live.grant.stream_id)
        if fallback is not None and not _yields(claim.publisher):
            fallback.publisher_left()  # the channel's queue takes the session back
            return
        if not live.live or window <= 0:
            self._tasks.spawn(self._end(live, reason))
            return
        self._await_return(live)

    async def disconnect(self, stream_id: str, *, end_session: bool, reason: str) -> bool:
        """Close the current publisher (stop, forced rotation); True when one was connected."""
        live = self._live.get(stream_id)
        if live is None:
            return False
        publisher = live.drop_publisher(self.clock())
        if publisher is not None:
            publisher.close(reason)
        if end_session or not live.live:
            await self._end(live, reason)
        else:
            self._await_return(live)
        return publisher is not None

    def _await_return(self, live: Live) -> None:
        """Keep the session for the reconnect window; when it is over, end it."""
        live.open_window(lambda: self._tasks.spawn(self._end(live, "reconnect window over")))

    async def _end(self, live: Live, reason: str, error: str | None = None) -> None:
        if self._live.get(live.grant.stream_id) is not live:
            return
        self._forget(live, reason)
        await live.opened.wait()
        await self.directory.session_closed(
            live.grant.stream_id, live.session_id, datetime.now(UTC), live.session_bytes, error
        )
        log.info(
            "stream %s: session %s ended (%s)",
            live.grant.stream_id,
            live.session_id,
            reason,
            extra=live.log_fields(),
        )

    def _forget(self, live: Live, reason: str) -> None:
        live.close_window()
        del self._live[live.grant.stream_id]
        self.claims.release(live.grant.stream_id)
        self.registry.remove(live.grant.stream_id, reason=reason)

    # ------------------------------------------------------------ queries

    def health(self, stream_id: str) -> EncoderHealth | None:
        """The encoder's figures; while it is away inside the reconnect window, the
        last ones it had, with ``encoder_connected`` false and when it left."""
        live = self._live.get(stream_id)
        publisher = None if live is None else live.publisher or live.last_publisher
        if live is None or publisher is None:
            return None
        connected = live.publisher is not None
        stats = live.stream.stats()
        return EncoderHealth(
            protocol=publisher.protocol,
            remote_address=publisher.remote,
            connected_at=live.connected_at,
            encoder_connected=connected,
            encoder_left_at=None if connected else live.left_at,
            session_id=live.session_id,
            bitrate=live.meter.bitrate(self.clock() if connected else live.left_clock),
            bytes_in=live.session_bytes,
            video=video_figures(live.stream.video_config, live.meter),
            audio=audio_figures(live.stream.audio_config),
            frames_dropped=sum(r.dropped_frames for r in stats.readers),
            srt=publisher.link_health() if isinstance(publisher, ReportsLinkHealth) else None,
        )

    def live_bytes(self, session_id: str) -> int | None:
        """Bytes received so far by an open session (the database has them at its end)."""
        for live in self._live.values():
            if live.session_id == session_id:
                return live.session_bytes
        return None

    def open_sessions(self) -> list[OpenSession]:
        """Every open session's bytes so far and when its encoder was last heard from,
        for periodic checkpoints (a crash ends the session there, not at the restart)."""
        now, clock = datetime.now(UTC), self.clock()
        return [
            OpenSession(live.session_id, live.session_bytes, self._last_seen(live, now, clock))
            for live in self._live.values()
            if live.session_id
        ]

    @staticmethod
    def _last_seen(live: Live, now: datetime, clock: float) -> datetime:
        if live.publisher is None and live.left_at is not None:
            return live.left_at
        return now - timedelta(seconds=max(0.0, clock - live.meter.last_activity))

    def publishing(self) -> list[str]:
        """Stream ids with a connected publisher: the ones ``health`` answers for."""
        return [sid for sid, live in self._live.items() if live.publisher is not None]

    async def hand_over(
        self, stream_id: str, save: Callable[[OpenSession], Awaitable[None]]
    ) -> tuple[OpenSession, float] | None:
        """The encoder, away inside its reconnect window, is back on another node: save
        the session's figures (``save``), then let the stream go here without ending
        the session, which that node continues. The session and the seconds left of its
        window; None (nothing let go) unless the stream is away and live here."""
        live = self._live.get(stream_id)
        if live is None or not self._away(live):
            return None
        session = OpenSession(
            live.session_id,
            live.session_bytes,
            self._last_seen(live, datetime.now(UTC), self.clock()),
        )
        await save(session)
        if self._live.get(stream_id) is not live or not self._away(live):
            return None  # back here meanwhile
        assert live.grace is not None
        left = max(0.0, live.grace.when() - asyncio.get_running_loop().time())
        self._forget(live, "encoder moved to another node")
        log.info(
            "stream %s: session %s handed over to another node",
            stream_id,
            live.session_id,
            extra=live.log_fields(),
        )
        return session, left

    @staticmethod
    def _away(live: Live) -> bool:
        return live.publisher is None and live.live and live.grace is not None

    def gives_way(self, stream_id: str) -> bool:
        """Whether a publisher of this stream arriving on another node may take over:
        ours is away (reconnect window) or silent as long as a local takeover needs."""
        live = self._live.get(stream_id)
        if live is None or live.publisher is None:
            return True
        silent = self.clock() - live.meter.last_activity
        return silent >= self.settings.takeover_silence_seconds

    def is_publishing(self, stream_id: str) -> bool:
        live = self._live.get(stream_id)
        return live is not None and live.publisher is not None

    async def shutdown(self) -> None:
        """Process stop: close publishers, end sessions so nothing is left live."""
        for live in list(self._live.values()):
            if live.publisher is not None:
                live.publisher.close("server shutting down")
            with contextlib.suppress(Exception):
                await self._end(live, "server shutting down")
        await self._tasks.close()
