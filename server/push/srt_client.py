"""SRT publisher (caller role, live mode): the thin asyncio layer around
:meth:`server.protocols.srt.SrtConnection.caller`.

Same surface as :class:`server.push.RtmpPublisher`, so a pusher can drive either::

    async with SrtPublisher.connect("srt://host:9000?streamid=#!::r=live/KEY,m=publish") as pub:
        pub.send_config(video_config); pub.send_config(audio_config)
        for frame in frames:
            pub.send_frame(frame)
            await pub.drain()
    # leaving the block waits for the listener's ACKs, sends SHUTDOWN and closes

The media is MPEG-TS (:class:`server.media.mpegts.TsMuxer`), cut into payloads of
seven 188-byte packets (1316 bytes, what ffmpeg, OBS and libsrt send). A tail of
fewer than seven packets waits for the next frame (like ffmpeg's packet-sized
output buffer) and is sent at the latest by :meth:`SrtPublisher.close`.

One connected UDP socket per publisher, one :class:`~server.timers.Ticker` shared
by every SRT publisher of the event loop (handshake re-sends, pacing bursts,
keepalives, key refresh: all at SRT's 10 ms granularity, instead of a timer per
connection re-armed after every ACK), and one flush per input (datagram, tick, or
send call):
everything protocol-shaped -- handshake, encryption, ACK/NAK, retransmission,
pacing, keepalives -- lives in the sans-IO core.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import ClassVar, Protocol, cast
from urllib.parse import unquote

from server.media.frame import TIMEBASE, CodecConfig, Frame, TrackKind
from server.media.mpegts import TsMuxer
from server.protocols import srt
from server.protocols.srt.crypto import check_passphrase
from server.timers import Ticker

from .opening import Connecting, LinkState, Publishing
from .ports import BatchWriter, FrameByFrame, Refused

log = logging.getLogger("relaycast.push.srt")

TS_PACKET = 188
PAYLOAD = srt.LIVE_PAYLOAD
"""Bytes of MPEG-TS per SRT payload: 7 x 188."""
DEFAULT_MAX_WRITE_BUFFER = 8 * 1024 * 1024
"""Hard bound on bytes queued in the UDP transport when the caller does not ``drain()``."""
TIMELINE_START = TIMEBASE
"""The first frame's dts is written as 1 s: frames up to 1 s older (audio that starts
just before the video) still get non-negative MPEG-TS timestamps."""
CLOSE_LINGER = 0.5
"""Seconds :meth:`SrtPublisher.close` waits, on top of the negotiated latency, between
the last ACK and the SHUTDOWN. A libsrt application that has not yet *read* a packet
when the SHUTDOWN arrives loses it (srt-live-transmit checks the socket state before
reading), and a busy receiver reads late; libsrt's own live senders do not linger at
all (SRTO_LINGER is 0 in live mode) and lose their tail."""
TICK = 0.010
"""Seconds between runs of the publishers' shared timer: SRT's SYN interval and the
sender's pacing burst, so a paced sender releases one whole burst per tick."""
_KEYS = frozenset({"streamid", "passphrase", "pbkeylen", "latency", "mode"})


class SrtClientError(Exception):
    """The publish attempt or the connection failed (network, protocol, timeout)."""


class SrtPublishRefused(SrtClientError, Refused):
    """The listener rejected the handshake: ``code`` is the wire rejection code
    (1010 wrong passphrase, 1011 passphrase on one side only, 2403 forbidden, ...),
    ``description`` its name."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(f"SRT listener refused the connection: {description}")
        self.code = code
        self.description = description

    @property
    def reason(self) -> str:
        return f"SRT rejection {self.code} ({self.description})"


# --------------------------------------------------------------------------- URLs


@dataclass(frozen=True, slots=True)
class SrtUrl:
    """A parsed ``srt://host:port?streamid=...&passphrase=...&pbkeylen=...&latency=...``.

    ``latency`` is in milliseconds (srt-live-transmit's and GStreamer's unit; ffmpeg's
    URL option is microseconds -- values above 65535 are refused as a likely mix-up).
    The stream ID and passphrase are secrets: they stay out of ``repr`` and
    :attr:`redacted`.
    """

    host: str
    port: int
    streamid: str = field(default="", repr=False)
    passphrase: str | None = field(default=None, repr=False)
    pbkeylen: int = 16
    latency_ms: int | None = None

    @property
    def redacted(self) -> str:
        """The URL for logs: host, port and the non-secret options only."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        options = []
        if self.streamid:
            options.append("streamid=***")
        if self.passphrase is not None:
            options += ["passphrase=***", f"pbkeylen={self.pbkeylen}"]
        if self.latency_ms is not None:
            options.append(f"latency={self.latency_ms}")
        query = "?" + "&".join(options) if options else ""
        return f"srt://{host}:{self.port}{query}"


def parse_srt_url(url: str) -> SrtUrl:
    """Split a caller URL; raises ``ValueError`` naming what is wrong.

    The query is split by hand rather than with ``urlsplit``: a stream ID is pasted
    with a literal ``#!::`` (that is what the API hands out, and what ffmpeg and OBS
    take), which ``urlsplit`` would cut off as a fragment. Values are percent-decoded
    (``%23!::`` is the same stream ID); ``+`` stays a plus.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != "srt":
        raise ValueError("not an srt:// URL")
    netloc, _, query = rest.partition("?")
    netloc = netloc.rstrip("/")
    if "/" in netloc:
        raise ValueError("SRT URLs have no path: put the stream in ?streamid=")
    host, port = _host_port(netloc)
    options: dict[str, str] = {}
    for item in query.split("&") if query else ():
        name, _, value = item.partition("=")
        name = unquote(name).lower()
        if name not in _KEYS:
            raise ValueError(f"unsupported SRT URL option {name!r}")
        options[name] = unquote(value)
    if options.get("mode", "caller") != "caller":
        raise ValueError("a publisher is an SRT caller: mode must be 'caller'")
    passphrase = options.get("passphrase") or None
    check_passphrase(passphrase)
    pbkeylen = _int_option(options, "pbkeylen") or 16
    if pbkeylen not in (16, 24, 32):
        raise ValueError("pbkeylen must be 16, 24 or 32")
    latency = _int_option(options, "latency")
    if latency is not None and not 0 <= latency <= 0xFFFF:
        raise ValueError("latency is in milliseconds (0-65535)")
    streamid = options.get("streamid", "")
    if len(streamid.encode("utf-8")) > 512:
        raise ValueError("streamid is longer than 512 bytes")
    return SrtUrl(host, port, streamid, passphrase, pbkeylen, latency)


def _host_port(netloc: str) -> tuple[str, int]:
    netloc = netloc.rsplit("@", 1)[-1]
    if netloc.startswith("["):
        host, _, tail = netloc[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else ""
    else:
        host, colon, port_text = netloc.rpartition(":")
        if not colon:
            host, port_text = netloc, ""
    if not host:
        raise ValueError("SRT URL has no host")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError("SRT URL needs a port (srt://host:port)")
    return host, int(port_text)


def _int_option(options: dict[str, str], name: str) -> int | None:
    text = options.get(name)
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"SRT URL option {name} must be an integer") from None


# --------------------------------------------------------------------------- protocol


class _FlowControlled(Protocol):
    """The write-buffer half of ``WriteTransport`` that both asyncio's and uvloop's
    UDP transports implement but ``DatagramTransport``'s type does not declare."""

    def get_write_buffer_size(self) -> int: ...

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None: ...


class _SharedTick:
    """The one :class:`Ticker` of every SRT publisher on an event loop; it exists
    while publishers do (the last one to leave removes it)."""

    by_loop: ClassVar[dict[asyncio.AbstractEventLoop, _SharedTick]] = {}

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.members: dict[_CallerProtocol, None] = {}  # insertion order: fair turns
        self.ticker = Ticker(loop, TICK, self._fire)

    @classmethod
    def join(cls, protocol: _CallerProtocol) -> None:
        tick = cls.by_loop.get(protocol.loop)
        if tick is None:
            tick = cls.by_loop[protocol.loop] = cls(protocol.loop)
        tick.members[protocol] = None
        tick.ticker.start()

    @classmethod
    def leave(cls, protocol: _CallerProtocol) -> None:
        tick = cls.by_loop.get(protocol.loop)
        if tick is None or protocol not in tick.members:
            return
        del tick.members[protocol]
        if not tick.members:
            tick.ticker.close()
            del cls.by_loop[protocol.loop]

    def _fire(self, now: float) -> bool:
        for member in list(self.members):
            member.tick(now)
        return bool(self.members)


class _CallerProtocol(LinkState[None, SrtClientError], asyncio.DatagramProtocol):
    """Moves datagrams between the socket and the sans-IO connection and turns its
    events into futures the publisher awaits. Holds no media logic."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.conn: srt.SrtConnection | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.settled: asyncio.Future[None] = loop.create_future()  # close(): all ACKed
        self.last_os_error: OSError | None = None
        self.bytes_sent = 0

    # ------------------------------------------------------------ asyncio side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[object, ...]) -> None:
        conn = self.conn
        if conn is not None:
            conn.receive(data, self.loop.time())
            self.pump()

    def error_received(self, exc: Exception) -> None:
        """ICMP errors (port unreachable while the listener is not up yet) are not
        fatal, as in libsrt: the handshake keeps re-sending until its timeout and an
        established connection ends by the peer idle timeout. The error is kept for
        the message."""
        if isinstance(exc, OSError):
            self.last_os_error = exc

    def connection_lost(self, exc: Exception | None) -> None:
        detail = f": {exc}" if exc is not None else ""
        self._set_error(SrtClientError(f"socket closed{detail}"))
        _SharedTick.leave(self)
        for future in (self.settled, self.lost):
            if not future.done():
                future.set_result(None)

    # ------------------------------------------------------------ the pump

    def attach(self, conn: srt.SrtConnection) -> None:
        """Drive ``conn`` from now on: the shared tick, then its first datagrams."""
        self.conn = conn
        _SharedTick.join(self)
        self.pump()

    def pump(self) -> None:
        """Events -> state, then one flush of everything the core queued (its timers
        are the shared tick's)."""
        conn = self.conn
        transport = self.transport
        if conn is None or transport is None:
            return
        for event in conn.events():
            self._handle(event)
        if transport.is_closing():
            return
        out = conn.datagrams_to_send()
        if out:
            sendto = transport.sendto
            for datagram in out:
                sendto(datagram)
                self.bytes_sent += len(datagram)
        if conn.closed:
            _SharedTick.leave(self)
            self._set_error(SrtClientError("connection closed"))
            transport.close()
            return
        if self.finishing and not self.settled.done() and conn.stats().send_buffer == 0:
            self.settled.set_result(None)

    def tick(self, now: float) -> None:
        conn = self.conn
        if conn is not None:
            conn.handle_timer(now)
            self.pump()

    def _handle(self, event: srt.Event) -> None:
        if isinstance(event, srt.ConnectionEstablished):
            if not self.started.done():
                self.started.set_result(None)
        elif isinstance(event, srt.Rejected):
            self._set_error(SrtPublishRefused(event.code, srt.describe_rejection(event.code)))
        elif isinstance(event, srt.ConnectionFailed):
            detail = f" (last socket error: {self.last_os_error})" if self.last_os_error else ""
            self._set_error(SrtClientError(f"{event.reason}{detail}"))
        elif isinstance(event, srt.ConnectionClosed):
            self._set_error(SrtClientError(f"listener closed the connection ({event.reason})"))
        # DataReceived / PacketsDropped: a publisher receives no media


# --------------------------------------------------------------------------- publisher


class SrtPublisher(Publishing[SrtClientError]):
    """One publishing SRT connection; create it with :meth:`connect`.

    ``send_*`` methods raise :class:`SrtClientError` (or :class:`SrtPublishRefused`)
    once the connection is gone, so a pusher notices a dead destination at its next
    frame. Flow control: SRT live has no congestion window -- the core paces at the
    input rate + 25 % -- so the only backlog is the UDP transport's buffer when the
    kernel refuses datagrams; ``drain()`` waits for it, ``writable`` reports it.
    """

    failure = SrtClientError
    _protocol: _CallerProtocol

    def __init__(
        self,
        url: SrtUrl,
        protocol: _CallerProtocol,
        conn: srt.SrtConnection,
        transport: asyncio.DatagramTransport,
        max_write_buffer: int,
    ) -> None:
        super().__init__(protocol, max_write_buffer)
        self.url = url
        self._conn = conn
        self._transport = transport
        self._buffer = cast(_FlowControlled, transport)
        self._configs: dict[TrackKind, CodecConfig] = {}
        self._muxer: TsMuxer | None = None
        self._offset: int | None = None
        self._pending = b""  # TS packets that do not fill a payload yet
        self._loop = protocol.loop

    # ------------------------------------------------------------ opening

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        timeout: float = 10.0,
        limits: srt.SrtLimits | None = None,
        write_buffer_high: int | None = None,
        max_write_buffer: int = DEFAULT_MAX_WRITE_BUFFER,
    ) -> Connecting[SrtPublisher]:
        """Resolve, handshake (induction + conclusion) and return a connected
        publisher; use as ``async with`` or ``await``. ``timeout`` bounds the whole
        handshake (it is the core's connect timeout; name resolution counts too).
        ``write_buffer_high`` sets the UDP transport's high-water mark."""
        return Connecting(
            cls._open(url, limits, write_buffer_high, max_write_buffer, budget=timeout)
        )

    @classmethod
    async def _open(
        cls,
        url: str,
        limits: srt.SrtLimits | None,
        write_buffer_high: int | None,
        max_write_buffer: int,
        *,
        budget: float,
    ) -> SrtPublisher:
        target = parse_srt_url(url)
        loop = asyncio.get_running_loop()
        base = limits if limits is not None else srt.SrtLimits()
        limits = replace(base, connect_timeout=budget)
        protocol = _CallerProtocol(loop)
        transport: asyncio.DatagramTransport | None = None
        try:
            async with asyncio.timeout(budget + 1.0):  # the core's own timeout fires first
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: protocol, remote_addr=(target.host, target.port)
                )
                if write_buffer_high is not None:
                    cast(_FlowControlled, transport).set_write_buffer_limits(high=write_buffer_high)
                peer = transport.get_extra_info("peername")
                conn = srt.SrtConnection.caller(
                    loop.time(),
                    streamid=target.streamid,
                    passphrase=target.passphrase,
                    pbkeylen=target.pbkeylen,
                    latency_ms=target.latency_ms,
                    limits=limits,
                    peer_ip=peer[0] if peer else None,
                )
                protocol.attach(conn)
                await protocol.started
        except TimeoutError:
            cls._abort(transport)
            raise SrtClientError(f"{target.redacted}: no connection within {budget:g} s") from None
        except SrtPublishRefused:
            cls._abort(transport)
            raise
        except SrtClientError as exc:
            cls._abort(transport)
            raise SrtClientError(f"{target.redacted}: {exc}") from None
        except OSError as exc:  # name resolution, no route, ...
            cls._abort(transport)
            raise SrtClientError(f"{target.redacted}: {exc}") from exc
        except BaseException:  # cancelled: the socket must not outlive the attempt
            cls._abort(transport)
            raise
        log.info(
            "srt push: publishing to %s (latency %d ms, %s)",
            target.redacted,
            conn.peer_latency_ms,
            f"AES-{conn.key_length * 8}" if conn.key_length else "unencrypted",
        )
        return cls(target, protocol, conn, transport, max_write_buffer)

    @staticmethod
    def _abort(transport: asyncio.DatagramTransport | None) -> None:
        if transport is not None:
            transport.abort()

    # ------------------------------------------------------------ status

    @property
    def bytes_sent(self) -> int:
        """Bytes handed to the socket so far (handshake, control and retransmissions
        included)."""
        return self._protocol.bytes_sent

    @property
    def write_buffer_size(self) -> int:
        """Bytes the UDP transport has not yet passed to the kernel."""
        return self._buffer.get_write_buffer_size()

    @property
    def redacted(self) -> str:
        """The destination for logs (no stream ID, no passphrase)."""
        return self.url.redacted

    def stats(self) -> srt.SrtStats:
        """RTT, retransmissions, send-buffer and drop counters of the connection."""
        return self._conn.stats()

    # ------------------------------------------------------------ sending

    def send_metadata(self, metadata: Mapping[str, object]) -> None:
        """Accepted and ignored: MPEG-TS has no ``onMetaData``. What a receiver needs
        (codecs, resolution, sample rate) travels in the PMT and in-band in the
        elementary streams (SPS/PPS before every keyframe, ADTS headers)."""
        self._check()

    def send_config(self, config: CodecConfig, timestamp_ms: int = 0) -> None:
        """Record one track's decoder configuration; the next frame starts a fresh
        PAT/PMT with it. ``timestamp_ms`` is accepted for RTMP parity and unused (the
        configuration is carried in-band). A *changed* configuration restarts the
        muxer, so its continuity counters restart too (a receiver may count one
        discontinuity per PID). Raises ``ValueError`` for codecs MPEG-TS output does
        not carry (only H.264/H.265 video and AAC audio)."""
        self._check()
        configs = {**self._configs, config.track: config}
        TsMuxer(list(configs.values()))  # ValueError now, not at the next frame
        if configs != self._configs:
            self._configs = configs
            self._muxer = None

    def send_frame(self, frame: Frame) -> None:
        """Mux one frame to MPEG-TS and send every full 1316-byte payload."""
        self._check()
        muxer = self._muxer
        fresh = muxer is None
        if muxer is None:
            if not self._configs:
                raise ValueError("send_config() must come before the first frame")
            muxer = self._muxer = TsMuxer(list(self._configs.values()))
        if self._offset is None:
            self._offset = TIMELINE_START - frame.dts
        if frame.dts + self._offset < 0:
            return  # more than 1 s before the first frame: no valid TS timestamp
        self._send_ts(muxer.mux(frame, self._offset, with_tables=fresh))

    def batch_writer(self) -> BatchWriter:
        """Frame by frame: the muxer and the core's pacing already shape what leaves."""
        return FrameByFrame(self)

    def send_ts(self, data: bytes) -> None:
        """Send already-muxed MPEG-TS (whole 188-byte packets): a recorded file, or
        one muxer's output shared by several destinations or load generators."""
        self._check()
        if len(data) % TS_PACKET:
            raise ValueError("send_ts() takes whole 188-byte MPEG-TS packets")
        self._send_ts(data)

    def _send_ts(self, data: bytes) -> None:
        if self._pending:
            data = self._pending + data
        full = len(data) - len(data) % PAYLOAD
        self._pending = data[full:]
        if full:
            conn = self._conn
            now = self._loop.time()
            for pos in range(0, full, PAYLOAD):
                conn.send(data[pos : pos + PAYLOAD], now)
            self._protocol.pump()

    def _flush_pending(self) -> None:
        if self._pending and self._protocol.error is None:
            self._conn.send(self._pending, self._loop.time())
            self._pending = b""
            self._protocol.pump()

    # ------------------------------------------------------------ closing

    async def close(self, grace: float = 5.0) -> None:
        """Send what is pending, wait (up to ``grace`` seconds) until the listener has
        acknowledged everything and had the negotiated latency (+ :data:`CLOSE_LINGER`)
        to deliver it, then SHUTDOWN and close; idempotent. Without the wait, a libsrt
        receiver drops what it still holds when the SHUTDOWN arrives."""
        if self._closing:
            return
        self._closing = True
        protocol = self._protocol
        if protocol.error is None:
            self._flush_pending()
            protocol.finishing = True
            protocol.pump()
            try:
                async with asyncio.timeout(grace):
                    await asyncio.shield(protocol.settled)
                    if protocol.error is None:
                        await asyncio.sleep(self._conn.peer_latency_ms / 1000 + CLOSE_LINGER)
            except TimeoutError:
                log.info("srt push: %s: closing with unacknowledged data", self.url.redacted)
        self._conn.close()
        transport = self._transport
        if not transport.is_closing():
            for datagram in self._conn.datagrams_to_send():  # the SHUTDOWN
                transport.sendto(datagram)
                protocol.bytes_sent += len(datagram)
            transport.close()
        try:
            async with asyncio.timeout(1.0):
                await asyncio.shield(protocol.lost)
        except TimeoutError:
            transport.abort()
