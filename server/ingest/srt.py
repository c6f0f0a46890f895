"""SRT ingest listener: the thin asyncio layer around the sans-IO SRT core.

One UDP socket per listening port, read in batches (:mod:`server.ingest.srt_udp`:
a ``recvfrom`` loop, one wake-up for many datagrams); the core's
:class:`SrtListener` routes every datagram to its connection by destination socket
ID. Datagram cost decides SRT throughput: the core appends payloads to the
connection's ``pending`` list (no object per packet), and a connection is drained
once after the batch, only when it queued something else (an immediate NAK, an
ACKACK, an event) or enough payloads to demux.
One :class:`~server.timers.Ticker` per listener drives every connection's timers
(ACK every 10 ms, periodic NAK, too-late drop, keepalive, idle timeout, paced
sends) and demuxes the MPEG-TS gathered since the last tick, so the loop holds one
timer however many callers there are. While the traffic is light the tick also reads
the socket, instead of a wake-up per datagram (TICK_READ_MAX). Stream rules (keys,
takeover, sessions) are the ``IngestManager``'s, exactly as for RTMP.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from server.bus import StreamGrant
from server.ingest.health import SrtLinkFigures
from server.ingest.manager import Claim, IngestManager
from server.ingest.ports import mask_key
from server.ingest.refusals import RefusalReason, Refused
from server.ingest.srt_udp import BatchedUdpEndpoint, Datagrams
from server.logfields import MediaLog, new_connection_id
from server.media.errors import MediaFormatError
from server.media.frame import Frame
from server.media.mpegts import TsDemuxer
from server.playback import PlaybackService, PlayRefused, PlayTicket
from server.playback.srt import SrtPlayerOutput, feed_srt_player
from server.protocols import srt
from server.protocols.srt import RejectCode
from server.settings import PlaybackSettings, SrtSettings
from server.tasks import BackgroundTasks
from server.timers import DeadlineTimer, Ticker

log = logging.getLogger("relaycast.srt")
# Payloads demuxed at once at the latest (~45 KB); otherwise the listener's tick
# demuxes what arrived within MEDIA_DELAY seconds: a few ms of delay for a fraction of
# the per-packet cost. The tick is also the SRT SYN interval (ACK period).
BATCH_PAYLOADS = 32
MEDIA_DELAY = 0.010
# While connections are up and the traffic is light, the listener's tick reads the
# socket: no wake-up per datagram (at 1-10 streams the wake-ups cost about a fifth of
# the ingest CPU; at 10 streams SRT-A fell from ~9.3 to ~7.2 ms per stream-second).
# Light: at most TICK_READ_MAX datagrams a tick (about 30 streams of 4 Mbit/s), and
# they take at most 1/TICK_READ_SHARE of the socket's receive buffer at TRUESIZE bytes
# of kernel memory each (the rest absorbs loop stalls; a small net.core.rmem_max
# keeps the wake-ups). Above that every datagram wakes the loop again, as before: a
# busy loop batches its reads by itself, and retransmission requests (NAKs, sent
# when the datagrams are read) are then not held for up to a tick (SRT-B at 50
# streams and 5 % loss recovered less in one run of two with the tick reading).
TICK_READ_MAX = 128
TRUESIZE = 3072
TICK_READ_SHARE = 4
TICK_DRAIN = 8192  # datagrams one tick reads at most
_DATA = srt.DataReceived

# Manager refusals as SRT rejection codes (protocols.md 4.3 step 6).
_REFUSAL_CODES: dict[RefusalReason, int] = {
    RefusalReason.UNKNOWN_KEY: RejectCode.FORBIDDEN,
    RefusalReason.STOPPED: RejectCode.FORBIDDEN,
    RefusalReason.IN_USE: RejectCode.CONFLICT,
}
# Player refusals as SRT rejection codes.
_PLAY_CODES: dict[RefusalReason, int] = {
    RefusalReason.NOT_LIVE: RejectCode.NOT_FOUND,
    RefusalReason.PLAYBACK_TOKEN: RejectCode.UNAUTHORIZED,
    RefusalReason.MAX_CLIENTS: RejectCode.OVERLOAD,
}
_STREAMID_DETAIL: dict[int, str] = {
    RejectCode.BAD_MODE: "only publishing is served (m=publish)",
    RejectCode.UNAUTHORIZED: "empty stream ID (no stream key)",
    RejectCode.NOTSUP_MEDIA: "stream ID type is not 'stream'",
}
# Core-level rejections (HandshakeRejected) as refusal reasons.
_CORE_REASONS: dict[int, RefusalReason] = {
    RejectCode.BADSECRET: RefusalReason.BAD_PASSPHRASE,
    RejectCode.UNSECURE: RefusalReason.BAD_PASSPHRASE,
    RejectCode.BACKLOG: RefusalReason.LIMITS,
}


class PassphraseRefused(Refused):
    """The caller's key material does not match the stream's passphrase; ``code`` is
    the rejection it hears (1010 wrong passphrase, 1011 encryption required...)."""

    def __init__(self, code: int) -> None:
        super().__init__(RefusalReason.BAD_PASSPHRASE, srt.describe_rejection(code))
        self.code = code


def _wire_code(refused: Refused) -> int:
    if isinstance(refused, PassphraseRefused):
        return refused.code
    return _REFUSAL_CODES.get(refused.reason, RejectCode.FORBIDDEN)


@dataclass
class SrtCounters:
    """Listener outcomes, read by the metrics layer (refusals are also the manager's).

    ``rejected`` counts handshakes refused, by wire code; ``failures`` connections
    that ended badly, by reason; ``discontinuities`` packets the core gave up on.
    """

    accepted: int = 0
    over_limit: int = 0
    rejected: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    dropped_packets: int = 0
    socket_errors: int = 0


def limits_from(settings: SrtSettings) -> srt.SrtLimits:
    """Ingest delivers contiguous packets at once (only holes wait): the HLS pipeline
    needs no play-time pacing, and it saves a wake-up per packet (protocols.md 1.5)."""
    return srt.SrtLimits(
        latency_ms=settings.latency_ms,
        tsbpd_delivery=False,
        peer_idle_timeout=settings.peer_idle_timeout,
        pending_timeout=settings.handshake_timeout,
        max_pending_handshakes=settings.max_pending_handshakes,
    )


def format_addr(addr: srt.Address) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def masked_streamid(streamid: str) -> str:
    """The stream ID as shown to people: its key and any session token / password
    masked (all of it when unparseable)."""
    try:
        info = srt.parse_streamid(streamid)
    except srt.StreamIdError:
        return mask_key(streamid.strip())
    shown = info.raw
    for secret in (info.key, info.session):
        if secret:
            shown = shown.replace(secret, mask_key(secret))
    return shown


class SrtIngestConnection:
    """One encoder connection. Implements ``server.ingest.ports.Publisher``.

    Created when a caller asks to connect (before the core's connection exists, so
    that the manager can be asked about the key); ``conn`` is set once accepted.
    """

    protocol = "srt"

    def __init__(self, server: SrtIngestServer, request: srt.ConnectionRequest) -> None:
        self.server = server
        self.addr = request.addr
        self.remote = format_addr(request.addr)
        self.connection_id = new_connection_id("srt")
        self.log = MediaLog(log, self.connection_id)
        self.attempted = masked_streamid(request.streamid)
        self.conn: srt.SrtConnection | None = None
        self.claim: Claim | None = None
        self.demux = TsDemuxer()
        # payloads not demuxed yet (about BATCH_PAYLOADS at most), the core's sink:
        # None marks packets the core gave up (a TS discontinuity at that place)
        self.pending: list[bytes | None] = []
        self._marked = 0  # discontinuities demuxed from pending, events not seen yet
        self.dirty = False
        self.finished = False
        self.close_reason: str | None = None
        self.ticket: PlayTicket | None = None  # set while this connection is a player
        self.player: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ Publisher

    def close(self, reason: str) -> None:
        """Publisher.close: takeover, stop or forced key rotation (a SHUTDOWN goes out)."""
        if self.close_reason is not None:
            return
        self.close_reason = reason
        self.log.info("srt %s: closing: %s", self.remote, reason)
        if self.conn is not None:
            self.conn.close()
            self.server.mark(self)

    # ------------------------------------------------------------ health

    def stats(self) -> srt.SrtStats | None:
        return self.conn.stats() if self.conn is not None else None

    def link_health(self) -> SrtLinkFigures | None:
        """SRT link figures for the stream health API."""
        stats = self.stats()
        return SrtLinkFigures.of(stats) if stats is not None else None

    # ------------------------------------------------------------ the pump

    def pump(self) -> None:
        """Drain the core: events, then datagrams (its timers are the listener's tick)."""
        self.dirty = False
        conn = self.conn
        if conn is None or self.finished:
            return
        events = conn.events()
        if events:
            self._handle(events)
        elif len(self.pending) >= BATCH_PAYLOADS:
            self._media()
        transport = self.server.transport
        out = conn.datagrams_to_send()
        if out and transport is not None:
            addr = self.addr
            for datagram in out:
                transport.sendto(datagram, addr)
        if conn.closed:
            self.finish(self.close_reason or "connection closed")

    def tick(self, now: float) -> None:
        """The listener's tick: the core's timers, the gathered media, the output."""
        conn = self.conn
        if conn is None:
            return
        conn.handle_timer(now)
        if self.pending:
            self._media()
        if conn.has_output or self.dirty:
            self.pump()

    def _handle(self, events: Sequence[srt.Event]) -> None:
        """Payloads are gathered and demuxed in batches (the tick demuxes the rest);
        any other event first demuxes what came before it."""
        pending = self.pending
        for event in events:
            if type(event) is _DATA:
                pending.append(event.payload)
                continue
            self._media()
            self._event(event)
        if len(pending) >= BATCH_PAYLOADS:
            self._media()

    def _event(self, event: srt.Event) -> None:
        if isinstance(event, srt.PacketsDropped):
            self.server.counters.dropped_packets += event.count
            if self._marked:  # its marker in pending did the discontinuity in place
                self._marked -= 1
            else:
                self.demux.discontinuity()
            self.log.debug("srt %s: %d packets lost (%s)", self.remote, event.count, event.reason)
        elif isinstance(event, srt.ConnectionEstablished):
            self.log.info(
                "srt %s: connected, latency %d ms, %s",
                self.remote,
                event.latency_ms,
                f"AES-{event.key_length * 8}" if event.encrypted else "unencrypted",
            )
        elif isinstance(event, srt.ConnectionClosed):
            self.close_reason = self.close_reason or "encoder closed the connection"
        elif isinstance(event, srt.ConnectionFailed):
            self.server.counters.failures[event.reason.split(":")[0]] += 1
            self.close_reason = self.close_reason or event.reason
            self.log.warning("srt %s: %s", self.remote, event.reason)

    def _media(self) -> None:
        """Demux the gathered payloads in one call: the demuxer's cost is mostly per
        call and per run of packets, so batches are several times cheaper per packet.
        A None among them (packets given up) is a discontinuity at that place."""
        pending = self.pending
        if not pending:
            return
        chunks = pending.copy()
        pending.clear()  # the same list: the core appends to it
        if None not in chunks:
            self._demux(cast(list[bytes], chunks))
            return
        run: list[bytes] = []
        for chunk in chunks:
            if chunk is not None:
                run.append(chunk)
                continue
            if run:
                self._demux(run)
                run = []
            self.demux.discontinuity()
            self._marked += 1
        if run:
            self._demux(run)

    def _demux(self, chunks: list[bytes]) -> None:
        claim = self.claim
        if claim is None:
            return
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        now = self.server.loop.time()
        claim.received(len(data), now)
        try:
            items = self.demux.feed(data)
        except MediaFormatError as exc:
            self.server.counters.failures["bad_media"] += 1
            self.log.warning("srt %s: not MPEG-TS: %s", self.remote, exc)
            self.close("malformed media")
            return
        if self.demux.tracks:  # before the frames: a PMT comes ahead of the media
            claim.tracks(self.demux.tracks)
        for item in items:
            if isinstance(item, Frame):
                claim.frame(item)
            else:
                claim.config(item)

    def finish(self, reason: str) -> None:
        """The connection is over: forget it, release the stream. Idempotent."""
        if self.finished:
            return
        self._media()
        self.finished = True
        conn = self.conn
        if conn is not None:
            self.server.listener.discard(conn)
            self.server.connections.pop(conn.socket_id, None)
            self.log.info("srt %s: disconnected: %s", self.remote, reason)
        if self.claim is not None:
            self.server.manager.release(self.claim, reason)
            self.claim = None
        if self.player is not None:
            self.player.cancel()
        if self.ticket is not None:
            self.ticket.close()

    async def play(self, ticket: PlayTicket, settings: PlaybackSettings) -> None:
        """Feed this player until the stream ends or it leaves, then hang up."""
        conn = self.conn
        assert conn is not None
        output = SrtPlayerOutput(conn, self.server.loop.time, lambda: self.server.mark(self))
        try:
            reason = await feed_srt_player(ticket.own_reader(), output, settings)
        except Exception:  # our bug must cost this player only
            self.log.exception("srt %s: player failed", self.remote)
            reason = "playback failed"
        finally:
            ticket.close()
        self.close(reason)


class SrtIngestServer(asyncio.DatagramProtocol):
    """One SRT listening port and the connections it carries.

    ``counters`` and ``connections`` (socket ID -> connection, each with ``stats()``
    and ``demux.stats``) are what a metrics layer reads; ``listener_stats()`` the
    core's handshake counters.
    """

    def __init__(self, manager: IngestManager, settings: SrtSettings) -> None:
        self.manager = manager
        self.settings = settings
        self.limits = limits_from(settings)
        self.counters = SrtCounters()
        self.connections: dict[int, SrtIngestConnection] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.deciding = 0
        self.playback: PlaybackService | None = None  # set by the composition root
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: srt.SrtListener | None = None
        self._listener_timer: DeadlineTimer | None = None
        self._ticker: Ticker | None = None
        self._endpoint: BatchedUdpEndpoint | None = None
        self._tick_read_limit = 0  # datagrams per tick that the tick may read itself
        self._arrived = 0  # datagrams since the last tick
        self._dirty: list[SrtIngestConnection] = []
        self._listener_dirty = False
        self._scheduled = False
        self._tasks = BackgroundTasks(log, "srt stream key check failed")

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "listen() first"
        return self._loop

    @property
    def listener(self) -> srt.SrtListener:
        assert self._listener is not None, "listen() first"
        return self._listener

    def listener_stats(self) -> srt.ListenerStats | None:
        return self._listener.stats() if self._listener is not None else None

    def prepare(self, loop: asyncio.AbstractEventLoop) -> None:
        """The protocol core and its timer on ``loop`` (``listen`` does it; unit tests
        call it and then ``connection_made`` with a transport of their own)."""
        self._loop = loop
        self._listener = srt.SrtListener(self.limits, loop.time())
        self._listener_timer = DeadlineTimer(loop, self._on_listener_timer)
        self._ticker = Ticker(loop, self.limits.syn_interval, self._tick)

    async def listen(self, host: str, port: int, reuse_port: bool = False) -> int:
        """Bind the UDP socket; returns the bound port (useful with port 0).
        ``reuse_port``: other processes (``--workers``) bind it too; the kernel keeps
        each caller's datagrams on one socket (a hash of the addresses)."""
        loop = asyncio.get_running_loop()
        self.prepare(loop)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.settings.receive_buffer)
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        BatchedUdpEndpoint(loop, sock, self)
        return int(sock.getsockname()[1])

    async def close(self) -> None:
        """Shut every connection down (SHUTDOWN sent), then the socket."""
        self._tasks.cancel()
        for connection in list(self.connections.values()):
            connection.close("server shutting down")
            connection.pump()
        if self._listener_timer is not None:
            self._listener_timer.cancel()
        if self._ticker is not None:
            self._ticker.stop()
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    # ------------------------------------------------------------ asyncio side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        if isinstance(transport, BatchedUdpEndpoint):
            self._endpoint = transport
            room = transport.receive_buffer // (TRUESIZE * TICK_READ_SHARE)
            self._tick_read_limit = min(TICK_READ_MAX, room)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        listener = self._listener
        assert listener is not None
        conn = listener.receive(data, addr, self.loop.time())
        if conn is not None:
            connection = self.connections.get(conn.socket_id)
            if connection is None:
                return
            if conn.has_output:
                connection.pump()
            elif len(connection.pending) >= BATCH_PAYLOADS and not connection.dirty:
                self.mark(connection)  # demuxed after this read burst
            return
        self._listener_dirty = True
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self._flush)

    def datagrams_received(self, datagrams: Datagrams) -> None:
        """One wake-up's datagrams (``srt_udp``): routed one by one at one clock
        reading; each connection is drained once, after the batch, when its core
        queued output or enough payloads gathered to demux them in one call."""
        listener = self._listener
        assert listener is not None
        now = self.loop.time()
        self._arrived += len(datagrams)
        receive = listener.receive
        connections = self.connections
        dirty = self._dirty
        for data, addr in datagrams:
            conn = receive(data, addr, now)
            if conn is None:
                self._listener_dirty = True
                continue
            connection = connections.get(conn.socket_id)
            if connection is None or connection.dirty:
                continue
            if conn.has_output or len(connection.pending) >= BATCH_PAYLOADS:
                connection.dirty = True
                dirty.append(connection)
        if dirty or self._listener_dirty:
            self._flush()

    def error_received(self, exc: Exception) -> None:
        """ICMP errors (a caller that went away): the peer timeout will clean up."""
        self.counters.socket_errors += 1
        log.debug("srt: socket error: %s", exc)

    def mark(self, connection: SrtIngestConnection) -> None:
        """Pump ``connection`` in the next flush (its core has something to send)."""
        if not connection.dirty:
            connection.dirty = True
            self._dirty.append(connection)
        if not self._scheduled and self._loop is not None:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def _tick(self, now: float) -> bool:
        """Every connection's timers and media, once per SYN interval; stops when
        no connection is left (``_add`` restarts it). First the datagrams that waited
        in the socket, when the tick reads it (see TICK_READ_SHARE)."""
        endpoint = self._endpoint
        if endpoint is not None and not endpoint.reading:
            endpoint.drain(TICK_DRAIN)
        connections = self.connections
        if not connections:
            if endpoint is not None:
                endpoint.resume_reading()
            return False
        for connection in list(connections.values()):
            connection.tick(now)
        if endpoint is not None:
            arrived, self._arrived = self._arrived, 0
            if arrived <= self._tick_read_limit:
                endpoint.pause_reading()
            else:
                endpoint.resume_reading()
        return True

    def _add(self, connection: SrtIngestConnection, conn: srt.SrtConnection) -> None:
        connection.conn = conn
        conn.deliver_into(connection.pending)
        self.connections[conn.socket_id] = connection
        assert self._ticker is not None
        self._ticker.start()

    def _flush(self) -> None:
        self._scheduled = False
        dirty, self._dirty = self._dirty, []
        for connection in dirty:
            connection.pump()
        if self._listener_dirty:
            self._pump_listener()

    # ------------------------------------------------------------ handshakes

    def _on_listener_timer(self) -> None:
        self.listener.handle_timer(self.loop.time())
        self._pump_listener()

    def _pump_listener(self) -> None:
        self._listener_dirty = False
        listener = self.listener
        for event in listener.events():
            self._listener_event(event, None)
        self._send_listener_output()

    def _send_listener_output(self) -> None:
        listener = self.listener
        transport = self.transport
        for datagram, addr in listener.datagrams_to_send():
            if transport is not None:
                transport.sendto(datagram, addr)
        assert self._listener_timer is not None
        self._listener_timer.follow(listener.next_timer())

    def _listener_event(self, event: srt.ListenerEvent, grant: StreamGrant | None) -> None:
        if isinstance(event, srt.ConnectionRequest):
            self._request(event)
            return
        self.counters.rejected[event.code] += 1
        self.manager.refusals.report(
            "srt",
            format_addr(event.addr),
            masked_streamid(event.streamid),
            _CORE_REASONS.get(event.code, RefusalReason.PROTOCOL_ERROR),
            f"{srt.describe_rejection(event.code)}: {event.reason}",
            grant,
        )

    def _request(self, request: srt.ConnectionRequest) -> None:
        """A caller passed the core's checks: parse its stream ID, then ask the manager."""
        try:
            info = srt.parse_streamid(request.streamid)
        except srt.StreamIdError as exc:
            # The parser's message may quote the stream ID, key and all: not for logs.
            detail = _STREAMID_DETAIL.get(exc.code, "unusable stream ID")
            self._reject(request, exc.code, RefusalReason.PROTOCOL_ERROR, detail)
            return
        if len(self.connections) + self.deciding >= self.settings.max_connections:
            self.counters.over_limit += 1
            self._reject(request, RejectCode.OVERLOAD, RefusalReason.LIMITS, "max_connections")
            return
        if info.mode == "request":
            if self.playback is not None and self.playback.needs_relay(info.key):
                self.deciding += 1
                self._tasks.spawn(self._relayed(request, info.key, info.session or ""))
                return
            self._play(request, info.key, info.session or "")
            return
        self.deciding += 1
        self._tasks.spawn(self._decide(request, info.key))

    async def _relayed(self, request: srt.ConnectionRequest, edge_id: str, token: str) -> None:
        """A player of a stream another node carries: once this node relays it
        (``server.playback.relay``), admitted like one of a stream carried here."""
        playback = self.playback
        try:
            if playback is not None and playback.relays is not None:
                await playback.relays.attach(edge_id)
        finally:
            self.deciding -= 1
        self._play(request, edge_id, token)

    def _play(self, request: srt.ConnectionRequest, edge_id: str, token: str) -> None:
        """A player (``m=request``): admitted by the playback service, accepted with the
        stream's passphrase, then fed MPEG-TS by its own task."""
        playback = self.playback
        if playback is None:
            detail = "playback is not available"
            self._reject(request, RejectCode.BAD_MODE, RefusalReason.PROTOCOL_ERROR, detail)
            return
        try:
            ticket = playback.open("srt", edge_id, token, format_addr(request.addr))
        except PlayRefused as refused:
            code = _PLAY_CODES.get(refused.reason, RejectCode.FORBIDDEN)
            self.counters.rejected[code] += 1
            self.listener.reject(request, code, self.loop.time())
            self._send_listener_output()
            return
        listener = self.listener
        conn = listener.accept(request, self.loop.time(), passphrase=ticket.grant.srt_passphrase)
        if conn is None:  # passphrase refused (event queued) or the request expired
            ticket.withdraw()
            for event in listener.events():
                self._listener_event(event, ticket.grant)
            self._send_listener_output()
            return
        self.counters.accepted += 1
        connection = SrtIngestConnection(self, request)
        connection.ticket = ticket
        connection.log.bind(ticket.grant.stream_id)
        self._add(connection, conn)
        self._send_listener_output()
        connection.pump()
        connection.player = self.loop.create_task(connection.play(ticket, playback.settings))

    def _reject(
        self, request: srt.ConnectionRequest, code: int, reason: RefusalReason, detail: str
    ) -> None:
        self.counters.rejected[code] += 1
        self.manager.refusals.report(
            "srt", format_addr(request.addr), masked_streamid(request.streamid), reason, detail
        )
        self.listener.reject(request, code, self.loop.time())

    async def _decide(self, request: srt.ConnectionRequest, key: str) -> None:
        connection = SrtIngestConnection(self, request)

        def passphrase_check(grant: StreamGrant) -> PassphraseRefused | None:
            # Checked before the claim opens a session or takes a stream over: a
            # caller with the right key but the wrong passphrase must leave no trace.
            code = self.listener.key_mismatch(request, grant.srt_passphrase)
            return PassphraseRefused(code) if code is not None else None

        try:
            claim = await self.manager.claim(
                key, connection, connection.attempted, passphrase_check
            )
        except Refused as refused:
            self._refused(request, connection, _wire_code(refused))
            return
        except Exception:  # the store failed: the caller hears 2500, not a timeout
            connection.log.exception("srt %s: stream key check failed", connection.remote)
            self._refused(request, connection, RejectCode.ISE)
            return
        finally:
            self.deciding -= 1
        self._accept(request, connection, claim)

    def _refused(
        self, request: srt.ConnectionRequest, connection: SrtIngestConnection, code: int
    ) -> None:
        connection.finish("refused")
        self.counters.rejected[code] += 1
        # Sampled with the manager's refusal lines: a flood of conclusions must not
        # get a line each.
        self.manager.refusals.log.log(
            logging.INFO,
            "srt %s: rejected with %s",
            connection.remote,
            srt.describe_rejection(code),
            via=connection.log,
        )
        self.listener.reject(request, code, self.loop.time())
        self._send_listener_output()

    def _accept(
        self, request: srt.ConnectionRequest, connection: SrtIngestConnection, claim: Claim
    ) -> None:
        """The key is good: accept with the stream's passphrase (the core unwraps the
        caller's key material with it, or answers 1010/1011)."""
        grant = claim.live.grant
        listener = self.listener
        if connection.close_reason is not None:  # stopped or rotated during the check
            self.manager.release(claim, connection.close_reason)
            self._refused(request, connection, RejectCode.FORBIDDEN)
            return
        conn = listener.accept(request, self.loop.time(), passphrase=grant.srt_passphrase)
        if conn is None:
            # Passphrase refused (the listener queued the rejection and its event)
            # or the request expired meanwhile.
            self.manager.release(claim, "handshake refused")
            connection.finish("handshake refused")
            for event in listener.events():
                mine = event.addr == request.addr and event.streamid == request.streamid
                self._listener_event(event, grant if mine else None)
            self._send_listener_output()
            return
        self.counters.accepted += 1
        connection.claim = claim
        connection.log.bind(claim.live.grant.stream_id, claim.live.session_id)
        self._add(connection, conn)
        self._send_listener_output()
        connection.pump()
