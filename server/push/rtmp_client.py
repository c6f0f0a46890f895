"""RTMP(S) publisher: the thin asyncio layer around the sans-IO client role.

Same shape as the ingest adapter (:mod:`server.ingest.rtmp`): one ``asyncio.Protocol``
that does read → feed → handle events → flush → re-arm one timer; everything
protocol-shaped (handshake, connect/createStream/publish, pings, acknowledgements,
chunking) lives in :class:`server.protocols.rtmp.RtmpConnection`.

Usage::

    async with RtmpPublisher.connect("rtmp://host/live/KEY") as pub:
        pub.send_metadata(build_on_metadata(video_config, audio_config))
        pub.send_config(video_config); pub.send_config(audio_config)
        for frame in frames:
            pub.send_frame(frame)
            await pub.drain()
    # leaving the block sends FCUnpublish + deleteStream and closes

Flow control is the caller's: ``send_*`` only queue bytes on the transport, and
``drain()`` waits while the transport holds more than its high-water mark, so a slow
server slows the caller instead of growing our memory. A caller that never drains hits
``max_write_buffer`` and gets :class:`RtmpClientError` rather than unbounded memory;
a live pusher that would rather drop media checks ``writable`` first.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, cast
from urllib.parse import urlsplit

from server.media.flv import build_tag_body, tag_timestamp_ms
from server.media.frame import CodecConfig, Frame, TrackKind
from server.protocols import rtmp
from server.protocols.rtmp.amf0 import AmfValue
from server.protocols.rtmp.chunk import encode_message
from server.protocols.rtmp.client_session import AUDIO_CSID, VIDEO_CSID
from server.protocols.rtmp.messages import MessageType
from server.timers import DeadlineTimer

from .opening import Connecting, LinkState, Publishing
from .ports import BatchWriter, Refused

log = logging.getLogger("relaycast.push.rtmp")

DEFAULT_PORTS = {"rtmp": 1935, "rtmps": 443}
DEFAULT_MAX_WRITE_BUFFER = 8 * 1024 * 1024
"""Hard bound on bytes queued in the transport when the caller does not ``drain()``."""
FLUSH_BYTES = 256 * 1024
"""A pre-chunked batch is written once it holds this much, and the transport checked
for room."""


class RtmpClientError(Exception):
    """The publish attempt or the connection failed (network, TLS, protocol, timeout)."""


class PublishRefused(RtmpClientError, Refused):
    """The server said no: ``code`` is its status code (``NetStream.Publish.BadName``,
    ``NetConnection.Connect.Rejected``, ...), ``description`` its explanation."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.code = code
        self.description = description

    @property
    def reason(self) -> str:
        return f"{self.code} ({self.description})" if self.description else self.code


# --------------------------------------------------------------------------- URLs


@dataclass(frozen=True, slots=True)
class RtmpUrl:
    """A parsed ``rtmp[s]://host[:port]/app[/more]/key[?query]`` publish URL.

    ``app`` is every path segment but the last (Wowza-style ``app/instance`` works),
    ``stream_name`` the last one plus the query (the publish name, tokens included).
    The stream name is a secret, so it stays out of ``repr`` and :attr:`redacted`.
    """

    scheme: str
    host: str
    port: int
    app: str
    stream_name: str = field(repr=False)
    netloc: str = ""

    @property
    def tls(self) -> bool:
        return self.scheme == "rtmps"

    @property
    def tc_url(self) -> str:
        """What ``connect`` carries as ``tcUrl``: the URL up to the app, as written."""
        return f"{self.scheme}://{self.netloc or self.host}/{self.app}"

    @property
    def redacted(self) -> str:
        """The URL for logs: the stream key replaced by ``***``."""
        return f"{self.tc_url}/***"


def parse_rtmp_url(url: str) -> RtmpUrl:
    """Split a publish URL; raises ``ValueError`` naming what is missing."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"not an rtmp:// or rtmps:// URL: scheme {parts.scheme!r}")
    host = parts.hostname
    if not host:
        raise ValueError("RTMP URL has no host")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise ValueError(f"RTMP URL has an invalid port: {exc}") from None
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) < 2:
        raise ValueError("RTMP URL must look like rtmp://host[:port]/app/stream-key")
    name = segments[-1] + (f"?{parts.query}" if parts.query else "")
    netloc = parts.netloc.rsplit("@", 1)[-1]  # never forward user:password in tcUrl
    return RtmpUrl(scheme, host, port, "/".join(segments[:-1]), name, netloc)


# --------------------------------------------------------------------------- protocol


class _PublisherProtocol(LinkState[int, RtmpClientError], asyncio.Protocol):
    """Moves bytes between the transport and the sans-IO connection and turns its
    events into futures the publisher awaits. Holds no media logic."""

    def __init__(self, conn: rtmp.RtmpConnection, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.conn = conn
        self.transport: asyncio.Transport | None = None
        self.reconnect_requested: rtmp.ReconnectRequested | None = None
        self._eof_sent = False  # close() unpublishes, then half-closes once
        self._timer = DeadlineTimer(self.loop, self._on_timer)

    # ------------------------------------------------------------ asyncio side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.pump()

    def data_received(self, data: bytes) -> None:
        self.conn.receive_data(data, self.loop.time())
        self.pump()

    def eof_received(self) -> bool:
        self.conn.receive_data(b"", self.loop.time())
        self.pump()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        detail = f": {exc}" if exc is not None else ""
        self._set_error(RtmpClientError(f"connection lost{detail}"))
        self._timer.cancel()
        self._wake_drain()
        if not self.lost.done():
            self.lost.set_result(None)

    # ------------------------------------------------------------ the pump

    def pump(self) -> None:
        """Events → state, then flush; hang up once the core says it is finished."""
        for event in self.conn.events():
            self._handle(event)
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        out = self.conn.data_to_send()
        if out:
            transport.write(out)
        if self.conn.closed:
            self._hang_up(transport)
            return
        self._timer.follow(self.conn.next_timer())

    def _hang_up(self, transport: asyncio.Transport) -> None:
        """After our own unpublish, half-close and let the server close its side: a
        full close with its answers still unread would reset the connection (nginx-rtmp
        logs "Connection reset by peer"). Failures and TLS just close."""
        if not self.finishing or not transport.can_write_eof():
            transport.close()
        elif not self._eof_sent:
            self._eof_sent = True
            transport.write_eof()

    def _on_timer(self) -> None:
        self.conn.handle_timer(self.loop.time())
        self.pump()

    def _handle(self, event: rtmp.Event) -> None:
        if isinstance(event, rtmp.PublishStarted):
            if not self.started.done():
                self.started.set_result(event.stream_id)
        elif isinstance(event, rtmp.PublishFailed):
            self._set_error(PublishRefused(event.code, event.description))
        elif isinstance(event, rtmp.ConnectionFailed):
            self._set_error(RtmpClientError(event.reason))
        elif isinstance(event, rtmp.PeerClosed):
            self._set_error(RtmpClientError("server closed the connection"))
        elif isinstance(event, rtmp.ReconnectRequested):
            self.reconnect_requested = event
            log.info("rtmp push: server asks us to reconnect (%s)", event.description)


# --------------------------------------------------------------------------- publisher


class RtmpPublisher(Publishing[RtmpClientError]):
    """One publishing RTMP(S) connection; create it with :meth:`connect`.

    ``send_*`` methods raise :class:`RtmpClientError` (or :class:`PublishRefused`, when
    the server revoked the publish later) once the connection is gone, so a pusher
    notices a dead destination at its next frame.
    """

    failure = RtmpClientError
    _protocol: _PublisherProtocol

    def __init__(
        self,
        url: RtmpUrl,
        protocol: _PublisherProtocol,
        transport: asyncio.Transport,
        max_write_buffer: int,
    ) -> None:
        super().__init__(protocol, max_write_buffer)
        self.url = url
        self._conn = protocol.conn
        self._transport = transport
        self._shared_sent = 0  # send_shared bytes, which bypass the connection core

    # ------------------------------------------------------------ opening

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
        limits: rtmp.RtmpLimits | None = None,
        write_buffer_high: int | None = None,
        max_write_buffer: int = DEFAULT_MAX_WRITE_BUFFER,
    ) -> Connecting[RtmpPublisher]:
        """Connect, handshake and publish; use as ``async with`` or ``await``.

        ``rtmps://`` verifies the server certificate against the system store unless
        ``ssl_context`` says otherwise; ``timeout`` bounds TCP + TLS + handshake +
        connect/createStream/publish together. ``write_buffer_high`` sets the
        transport's high-water mark (what ``drain()`` waits below).
        """
        return Connecting(
            cls._open(url, ssl_context, limits, write_buffer_high, max_write_buffer, budget=timeout)
        )

    @classmethod
    async def _open(
        cls,
        url: str,
        ssl_context: ssl.SSLContext | None,
        limits: rtmp.RtmpLimits | None,
        write_buffer_high: int | None,
        max_write_buffer: int,
        *,
        budget: float,
    ) -> RtmpPublisher:
        target = parse_rtmp_url(url)
        if ssl_context is not None and not target.tls:
            raise ValueError("an ssl_context needs an rtmps:// URL")
        tls = (ssl_context or ssl.create_default_context()) if target.tls else None
        loop = asyncio.get_running_loop()
        limits = limits or rtmp.RtmpLimits(handshake_timeout=budget, idle_timeout=budget)
        conn = rtmp.RtmpConnection(rtmp.Role.CLIENT, limits=limits, now=loop.time())
        conn.start(target.app, target.tc_url, target.stream_name)
        protocol = _PublisherProtocol(conn, loop)
        transport: asyncio.Transport | None = None
        try:
            async with asyncio.timeout(budget):
                raw, _ = await loop.create_connection(
                    lambda: protocol,
                    target.host,
                    target.port,
                    ssl=tls,
                    server_hostname=target.host if tls is not None else None,
                )
                transport = raw
                if write_buffer_high is not None:
                    transport.set_write_buffer_limits(high=write_buffer_high)
                await protocol.started
        except TimeoutError:
            cls._abort(transport)
            raise RtmpClientError(f"{target.redacted}: no publish within {budget:g} s") from None
        except RtmpClientError:
            cls._abort(transport)
            raise
        except OSError as exc:  # refused, unreachable, TLS verification, ...
            cls._abort(transport)
            raise RtmpClientError(f"{target.redacted}: {exc}") from exc
        log.info("rtmp push: publishing to %s (stream %d)", target.redacted, conn.stream_id)
        return cls(target, protocol, transport, max_write_buffer)

    @staticmethod
    def _abort(transport: asyncio.Transport | None) -> None:
        if transport is not None:
            transport.abort()

    # ------------------------------------------------------------ status

    @property
    def stream_id(self) -> int:
        """The message stream the server gave us (needed to pre-chunk media)."""
        return self._conn.stream_id

    @property
    def chunk_size(self) -> int:
        """Our outgoing chunk size (needed to pre-chunk media)."""
        return self._conn.out_chunk_size

    @property
    def bytes_sent(self) -> int:
        """Bytes handed to the transport so far (handshake included)."""
        return self._conn.bytes_sent + self._shared_sent

    @property
    def write_buffer_size(self) -> int:
        """Bytes the transport has not yet passed to the kernel."""
        return self._transport.get_write_buffer_size()

    @property
    def reconnect_requested(self) -> rtmp.ReconnectRequested | None:
        """Set when an E-RTMP server asked us to reconnect (a pusher should, at a keyframe)."""
        return self._protocol.reconnect_requested

    # ------------------------------------------------------------ sending

    def send_metadata(self, metadata: Mapping[str, AmfValue]) -> None:
        """``@setDataFrame onMetaData`` (see ``server.media.flv.build_on_metadata``)."""
        self._check()
        self._conn.send_metadata(metadata)
        self._protocol.pump()

    def send_config(self, config: CodecConfig, timestamp_ms: int = 0) -> None:
        """The sequence header of one track; send it before that track's frames."""
        self._send_body(config.track, timestamp_ms, build_tag_body(config))

    def send_frame(self, frame: Frame) -> None:
        """One frame as an FLV tag body, timestamped with its dts in milliseconds."""
        self._send_body(frame.track, tag_timestamp_ms(frame), build_tag_body(frame))

    def send_prechunked(self, wire: bytes) -> None:
        """Bytes from ``chunk.encode_message`` built with :attr:`stream_id` and
        :attr:`chunk_size` (or any valid chunk sequence continuing ours): written as
        they are, so fan-out and load generation cost no framing per connection."""
        self._check()
        self._conn.send_prechunked(wire)
        self._protocol.pump()

    def send_shared(self, wire: bytes) -> None:
        """:meth:`send_prechunked` straight to the transport, for bytes written to many
        destinations (``server.push.fanout``). The order holds: the connection core
        queues nothing between pumps (every ``send_*``, read and timer flushes it), and
        what it might hold goes first anyway. Publishing is implied: this object exists
        once the publish started, and whatever ends it (our close, a revoked publish, a
        failure) is what :meth:`_check` refuses."""
        self._check()
        transport = self._transport
        if transport.is_closing():
            raise RtmpClientError("connection closed")
        held = self._conn.data_to_send()
        if held:
            transport.write(held)
        transport.write(wire)
        self._shared_sent += len(wire)

    def batch_writer(self) -> BatchWriter:
        """Batches chunked here and written with one ``send_prechunked`` each."""
        return Prechunked(self)

    def _send_body(self, track: TrackKind, timestamp_ms: int, body: bytes) -> None:
        self._check()
        if track is TrackKind.VIDEO:
            self._conn.send_video(timestamp_ms, body)
        elif track is TrackKind.AUDIO:
            self._conn.send_audio(timestamp_ms, body)
        else:
            raise ValueError(f"cannot publish a {track.value} track over RTMP")
        self._protocol.pump()

    # ------------------------------------------------------------ closing

    async def close(self, grace: float = 5.0) -> None:
        """Unpublish cleanly (FCUnpublish + deleteStream), flush, and close; idempotent.

        Queued bytes leave first; then we wait up to ``grace`` seconds for the server
        to close its side, and abort if it does not."""
        if not self._closing:
            self._closing = True
            if self._protocol.error is None and not self._conn.closed:
                self._protocol.finishing = True
                self._conn.unpublish()
                self._protocol.pump()
            elif not self._transport.is_closing():
                self._transport.close()
        try:
            async with asyncio.timeout(grace):
                await asyncio.shield(self._protocol.lost)
        except TimeoutError:
            self._transport.abort()


class PrechunkedTarget(Protocol):
    """Where :class:`Prechunked` writes: a publisher here, a player connection in
    ``server.playback.rtmp``."""

    @property
    def stream_id(self) -> int: ...

    @property
    def chunk_size(self) -> int: ...

    def send_prechunked(self, wire: bytes) -> None: ...


class Prechunked:
    """RTMP batch writer: frames chunked here and written with one ``write``.

    Every message is a fmt-0 chunk sequence (independent of what went before on its
    chunk stream), so batching changes nothing on the wire but the number of writes;
    all media and sequence headers take this path, so the connection's own header
    compression never sees a chunk stream we wrote to.
    """

    __slots__ = ("parts", "pending", "publisher")

    def __init__(self, publisher: PrechunkedTarget) -> None:
        self.publisher = publisher
        self.parts: list[bytes] = []
        self.pending = 0

    @property
    def full(self) -> bool:
        return self.pending >= FLUSH_BYTES

    def _add(self, track: TrackKind, timestamp_ms: int, body: bytes) -> None:
        pub = self.publisher
        if track is TrackKind.VIDEO:
            csid, kind = VIDEO_CSID, MessageType.VIDEO
        else:
            csid, kind = AUDIO_CSID, MessageType.AUDIO
        wire = encode_message(csid, kind, pub.stream_id, timestamp_ms, body, pub.chunk_size)
        self.parts.append(wire)
        self.pending += len(wire)

    def frame(self, frame: Frame) -> None:
        self._add(frame.track, tag_timestamp_ms(frame), build_tag_body(frame))

    def config(self, config: CodecConfig, timestamp_ms: int) -> None:
        self._add(config.track, timestamp_ms, build_tag_body(config))

    def flush(self) -> None:
        if self.parts:
            wire = self.parts[0] if len(self.parts) == 1 else b"".join(self.parts)
            self.parts.clear()
            self.pending = 0
            self.publisher.send_prechunked(wire)
