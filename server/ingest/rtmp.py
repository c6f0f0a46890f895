"""RTMP(S) ingest listener: the thin asyncio layer around the sans-IO RTMP core.

read → feed → handle events → flush → re-arm one timer. Everything protocol-shaped
lives in ``server.protocols.rtmp``; stream rules live in ``IngestManager``; this
module only moves bytes and decisions between them.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import Counter
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import parse_qs

from server.ingest.coalesce import ReadCoalescer
from server.ingest.heap import HeapTrimmer
from server.ingest.manager import Claim, IngestManager
from server.ingest.ports import mask_key
from server.ingest.refusals import RefusalReason, Refused
from server.ingest.rtmp_pump import MalformedMedia, RtmpIngestPump
from server.ingest.spread import Spread
from server.ingest.throttle import RefusalThrottle
from server.logfields import MediaLog, new_connection_id
from server.media.flv import announced_tracks
from server.playback import PlaybackService, PlayRefused, PlayTicket
from server.playback.fanout import RtmpFanout
from server.playback.relay import PlayerRelays
from server.playback.rtmp import RtmpPlayer
from server.protocols import rtmp
from server.settings import RtmpSettings
from server.timers import DeadlineTimer

log = logging.getLogger("relaycast.rtmp")


@dataclass
class RtmpCounters:
    """Connection outcomes, read by the metrics layer (refusals are the manager's)."""

    accepted: int = 0
    over_limit: int = 0
    throttled: int = 0  # refusals answered late (RefusalThrottle)
    failures: Counter[str] = field(default_factory=Counter)


def _masked_app(app: str) -> str:
    """A wrong app is often a key pasted into the server URL: mask all but a short head."""
    head, _, rest = app.partition("/")
    head = head if len(head) <= 16 else mask_key(head)
    return f"{head}/{mask_key(rest)}" if rest else head


def limits_from(settings: RtmpSettings) -> rtmp.RtmpLimits:
    return rtmp.RtmpLimits(
        handshake_timeout=settings.handshake_timeout,
        idle_timeout=settings.idle_timeout,
        max_chunk_size=settings.max_chunk_size,
        max_message_size=settings.max_message_size,
        max_partial_bytes=settings.max_partial_bytes,
        max_unpublished_bytes=settings.max_unpublished_bytes,
    )


class RtmpIngestConnection(asyncio.Protocol):
    """One encoder connection (implements ``server.ingest.ports.Publisher``), or one
    player once it asks to ``play`` (then fed by ``server.playback.rtmp``)."""

    protocol = "rtmp"
    coalesce_reads = True
    """Once publishing, read in the server's coalesced passes (``rtmp.read_tick``)."""

    def __init__(self, server: RtmpIngestServer) -> None:
        self.server = server
        self.remote = "?"
        self.host = "?"
        self.connection_id = new_connection_id("rtmp")
        self.log = MediaLog(log, self.connection_id)
        self.loop = asyncio.get_running_loop()
        self.conn = rtmp.RtmpConnection(
            rtmp.Role.SERVER, limits=server.limits, now=self.loop.time(), budget=server.budget
        )
        self.transport: asyncio.Transport | None = None
        self.pump = RtmpIngestPump(self.conn)
        """Feeds the core and handles its media events (compiled: server/accel_modules.txt)."""
        self.timer = DeadlineTimer(self.loop, self._on_timer)
        self.pending: asyncio.Task[None] | None = None
        self.app = ""
        self.enhanced = False  # the peer listed FourCCs in connect (Enhanced RTMP)
        self.ticket: PlayTicket | None = None  # set while this connection is a player
        self.player: RtmpPlayer | None = None
        self.fanout: RtmpFanout | None = None  # what feeds the player

    @property
    def claim(self) -> Claim | None:
        """The publish this connection holds (the pump hands it the frames)."""
        return self.pump.claim

    @claim.setter
    def claim(self, claim: Claim | None) -> None:
        self.pump.claim = claim

    # ------------------------------------------------------------ asyncio side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.protocol = "rtmps" if transport.get_extra_info("sslcontext") else "rtmp"
        peer = transport.get_extra_info("peername")
        self.remote = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.host = str(peer[0]) if peer else "?"
        if self.server.active >= self.server.settings.max_connections:
            self.server.counters.over_limit += 1
            self.log.warning("rtmp: refusing %s: max_connections reached", self.remote)
            self.transport.abort()
            return
        self.server.active += 1
        self.server.counters.accepted += 1
        self.server.connections.add(self)
        self._pump()

    def data_received(self, data: bytes) -> None:
        self._decide(self.pump.receive(data, self.loop.time()))

    def eof_received(self) -> bool:
        self.conn.receive_data(b"", self.loop.time())
        self._pump()
        return False

    def pause_writing(self) -> None:
        if self.player is not None:
            self.player.paused = True

    def resume_writing(self) -> None:
        if self.player is not None:
            self.player.paused = False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.server.coalescer is not None:
            self.server.coalescer.remove(self)
        if self.fanout is not None and self.player is not None:
            self.fanout.remove(self.player)
            self.fanout = None
        if self.ticket is not None:
            self.ticket.close()
        if self in self.server.connections:
            self.server.connections.discard(self)
            self.server.active -= 1
        # Refcounting frees a closed connection at once only without cycles (transport
        # <-> protocol, timer -> bound method): the cyclic collector's full passes come
        # late, and a flood of short connections left thousands of them for it,
        # fragmenting the heap for good (the hostile bench's handshake flood).
        self.timer.close()
        self.transport = None
        held = self.conn.buffered
        self.conn.release()
        self.server.trimmer.released(held)
        if self.pending is not None:
            self.pending.cancel()
        if self.claim is not None:
            self.server.manager.release(self.claim, "connection closed")
            self.claim = None

    def close(self, reason: str) -> None:
        """Publisher.close: takeover, stop or forced key rotation."""
        self.log.info("rtmp %s: closing: %s", self.remote, reason)
        self.conn.close(reason)
        self._pump()

    # ------------------------------------------------------------ the pump

    def _pump(self) -> None:
        self._decide(self.pump.next_event())

    def _decide(self, event: rtmp.Event | MalformedMedia | None) -> None:
        """Handle what the pump gave out, starting with ``event``, then send and re-arm.

        The pump handles the media events (nearly all of them) itself, per message in
        compiled code; what comes out needs a decision here. Deciding may replay what
        the peer pipelined (accepting a connect can raise the publish that came in the
        same read): the pump hands that out too, before it returns None."""
        pump = self.pump
        while event is not None:
            if isinstance(event, MalformedMedia):
                self._malformed(event)
            else:
                self._handle(event)
            event = pump.next_event()
        conn = self.conn
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        out = conn.data_to_send()
        if out:
            transport.write(out)
        if conn.closed:
            transport.close()
            return
        # A server-role deadline never moves earlier (the handshake deadline is fixed,
        # the idle one follows the last read), so while a timer is armed the per-read
        # cost of asking the core for its deadline is skipped.
        if not self.timer.armed:
            self.timer.follow(conn.next_timer())

    def _on_timer(self) -> None:
        self.conn.handle_timer(self.loop.time())
        self._pump()

    # ------------------------------------------------------------ events

    def _handle(self, event: rtmp.Event) -> None:
        """Every event but media (the pump turns those into frames itself)."""
        if isinstance(event, rtmp.MetadataReceived):
            if self.claim is not None:
                self.claim.metadata(dict(event.metadata))
                if (tracks := announced_tracks(event.metadata)) is not None:
                    self.claim.tracks(tracks)
        elif isinstance(event, rtmp.ConnectRequested):
            self._connect(event)
        elif isinstance(event, rtmp.PublishRequested):
            self.pending = self.loop.create_task(self._publish(event))
        elif isinstance(event, rtmp.Unpublished):
            self._unpublished()
        elif isinstance(event, rtmp.PlayRequested):
            self._play(event)
        elif isinstance(event, rtmp.PlayStopped):
            self.close("player stopped")
        elif isinstance(event, rtmp.ConnectionFailed):
            self.server.counters.failures[event.reason.split(":")[0]] += 1
            self.log.warning("rtmp %s: %s", self.remote, event.reason)

    def _connect(self, event: rtmp.ConnectRequested) -> None:
        app = event.app.split("?", 1)[0].strip("/")
        if app != self.server.settings.app:
            self.server.manager.refusals.report(
                self.protocol,
                self.remote,
                _masked_app(app),
                RefusalReason.WRONG_APP,
                "unknown application",
                connection=self.connection_id,
            )
            self.conn.reject_connect(f"unknown application {app!r}")
            return
        self.app = app
        fourccs = event.properties.get("fourCcList")
        self.enhanced = isinstance(fourccs, list) and bool(fourccs)
        self.conn.accept_connect()

    async def _publish(self, event: rtmp.PublishRequested) -> None:
        key = event.name.split("?", 1)[0]
        attempted = f"{self.app}/{mask_key(key)}"
        try:
            claim = await self.server.manager.claim(key, self, attempted)
        except Refused as refused:
            if refused.reason is RefusalReason.UNKNOWN_KEY:
                await self._slow_down()
            self._refuse(event.stream_id, str(refused))
            return
        except Exception:  # the store failed: answer the encoder rather than leave it hanging
            self.server.counters.failures["auth_error"] += 1
            self.log.exception("rtmp %s: stream key check failed", self.remote)
            self._refuse(event.stream_id, "internal error, try again later")
            return
        if self.conn.closed or self.transport is None or self.transport.is_closing():
            self.server.manager.release(claim, "connection closed during auth")
            return
        self.claim = claim
        self.log.bind(claim.live.grant.stream_id, claim.live.session_id)
        self.conn.accept_publish(event.stream_id)
        self._pump()
        self._coalesce()

    def _coalesce(self) -> None:
        """A publisher's reads move to the server's coalesced passes (issue 20: one
        wake-up per tick for all publishers, instead of one per message each)."""
        transport = self.transport
        if not self.coalesce_reads or transport is None or transport.is_closing():
            return
        coalescer = self.server.reads()
        if coalescer is not None:
            coalescer.adopt(transport, self)

    async def _slow_down(self) -> None:
        """Hold the answer to a guessed key (RefusalThrottle); valid keys never wait."""
        delay = self.server.throttle.refused(self.host, self.loop.time())
        if delay > 0:
            self.server.counters.throttled += 1
            await asyncio.sleep(delay)

    def _refuse(self, stream_id: int, description: str) -> None:
        if not self.conn.closed:
            self.conn.reject_publish(stream_id, description=description)
            self._pump()

    def _play(self, event: rtmp.PlayRequested) -> None:
        """A player: admitted by the playback service, then fed by its stream's fanout
        (of a stream another node carries: once this node relays it)."""
        playback = self.server.playback
        relaying = self.pending is not None and not self.pending.done()
        if playback is None or self.ticket is not None or relaying:
            self.conn.reject_play(event.stream_id, description="playback is not available")
            return
        edge_id = event.name.partition("?")[0]
        if playback.needs_relay(edge_id) and playback.relays is not None:
            self.pending = self.loop.create_task(self._relayed(event, playback.relays))
            return
        self._admit_play(event, playback)

    async def _relayed(self, event: rtmp.PlayRequested, relays: PlayerRelays) -> None:
        await relays.attach(event.name.partition("?")[0])
        playback = self.server.playback
        transport = self.transport
        if playback is None or self.conn.closed or transport is None or transport.is_closing():
            return
        self._admit_play(event, playback)  # refused as not live if the relay failed
        self._pump()

    def _admit_play(self, event: rtmp.PlayRequested, playback: PlaybackService) -> None:
        edge_id, _, query = event.name.partition("?")
        token = parse_qs(query).get("token", [""])[0]
        try:
            ticket = playback.open(
                self.protocol,
                edge_id,
                token,
                self.remote,
                enhanced_rtmp=self.enhanced,
                with_reader=False,
            )
        except PlayRefused as refused:
            self.conn.reject_play(event.stream_id, description=str(refused))
            return
        self.ticket = ticket
        self.log.bind(ticket.grant.stream_id)
        self.conn.accept_play(event.stream_id)
        transport = self.transport
        if transport is None:
            return
        transport.set_write_buffer_limits(high=playback.settings.write_buffer_bytes)
        edge = ticket.grant.edge_id
        player = RtmpPlayer(self.conn, event.stream_id, transport, self._pump, self._played, edge)
        self.player = player
        self.fanout = playback.join_rtmp(ticket, player, self.conn.out_chunk_size, event.stream_id)

    def _played(self, reason: str) -> None:
        """The fanout let this player go (stream ended, stuck, or failed)."""
        self.fanout = None
        if self.ticket is not None:
            self.ticket.close()
        self.log.info("rtmp %s: player finished: %s", self.remote, reason)
        self.close(reason)

    def _unpublished(self) -> None:
        if self.claim is not None:
            self.server.manager.release(self.claim, "encoder unpublished")
            self.claim = None

    def _malformed(self, bad: MalformedMedia) -> None:
        """A tag the FLV parser refused: the encoder is broken, hang up."""
        self.server.counters.failures["bad_media"] += 1
        self.log.warning("rtmp %s: bad %s tag: %s", self.remote, bad.kind, bad.error)
        self.conn.close("malformed media")


class RtmpIngestServer:
    """The listening socket(s) and what all their connections share."""

    connection_class: type[RtmpIngestConnection] = RtmpIngestConnection  # benchmarks swap it

    def __init__(self, manager: IngestManager, settings: RtmpSettings) -> None:
        self.manager = manager
        self.settings = settings
        self.limits = limits_from(settings)
        self.budget = rtmp.ByteBudget(settings.max_partial_bytes_total)
        self.throttle = RefusalThrottle(settings.refusal_delay_max, settings.refusal_addresses)
        self.trimmer = HeapTrimmer()
        self.counters = RtmpCounters()
        self.connections: set[RtmpIngestConnection] = set()
        self.playback: PlaybackService | None = None  # set by the composition root
        self.active = 0
        self.coalescer: ReadCoalescer | None = None  # made on the first publish
        self._servers: list[asyncio.Server] = []
        self.spread: Spread | None = None
        """``--workers``: accept through the spread, which evens connections out among
        the workers (set by the composition root)."""

    def reads(self) -> ReadCoalescer | None:
        """The coalesced reader publishers move to, or None when ``read_tick`` is 0."""
        if self.coalescer is None and self.settings.read_tick > 0:
            loop = asyncio.get_running_loop()
            self.coalescer = ReadCoalescer(loop, self.settings.read_tick)
        return self.coalescer

    async def listen(
        self, host: str, port: int, tls: ssl.SSLContext | None = None, reuse_port: bool = False
    ) -> int:
        """Start a listener; returns the bound port (useful with port 0). ``reuse_port``:
        other processes (``--workers``) listen on the same port, the kernel spreads
        connections between them."""
        if self.spread is not None:
            kind = "rtmps" if tls else "rtmp"
            timeout = self.settings.handshake_timeout if tls else None
            factory = lambda: self.connection_class(self)  # noqa: E731
            return self.spread.listen(host, port, kind, factory, tls, timeout)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: self.connection_class(self),
            host,
            port,
            reuse_port=reuse_port or None,
            ssl=tls,
            ssl_handshake_timeout=self.settings.handshake_timeout if tls else None,
        )
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self.spread is not None:
            self.spread.close()
        for server in self._servers:
            server.close()
        for connection in list(self.connections):
            connection.close("server shutting down")
        for server in self._servers:
            await server.wait_closed()
        self.trimmer.close()
        if self.coalescer is not None:
            self.coalescer.close()
