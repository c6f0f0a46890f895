"""The LL-HLS viewer hot path: playlist and part GETs answered below aiohttp.

Under load a viewer is four requests a second (a blocking reload and a part, twice),
and aiohttp's machinery around each one (request and response objects, the router,
the middleware chain, a task woken per held reload) costs more than serving it. This
protocol sits between the connection guard and aiohttp's protocol on the public
listener and answers the requests it fully understands itself:

* ``GET /live/{edgeId}[/{rendition}]/media.m3u8`` of a live local stream, plain (with a
  complete segment) or blocking (``_HLS_msn``/``_HLS_part``): held reloads join the
  packager's :class:`~server.hls.held.HeldReloads` and are answered in one pass per
  change, from a response rendered once per playlist version, query suffix and second;
* ``GET`` of a complete part, a segment or an init segment, without ``Range``;
* ``GET`` of the hinted part while it is written (``chunked_parts``): chunked transfer,
  each new chunk appended by reference to every such response in one pass per data
  change of the packager (its ``feeding`` registry), never a task per viewer;
* ``GET …/master.m3u8`` once every expected rendition is playable,

so a player's connection stays here from its first request on.

Anything else (another path or method, HTTP/1.0, a body, ``Range``, ``Connection:
close``, percent-encoding, a head aiohttp's strict parser refuses, an error to report at
once, a request that must wait in a way only the aiohttp handlers implement) hands the
connection, with every byte not yet answered, to aiohttp's own protocol for good, so all
other behaviour is aiohttp's.
The responses carry the same status, headers and bodies as the aiohttp handlers'.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import time
from collections.abc import Callable
from typing import Any, cast

from server.hls import tokens
from server.hls.blocking import (
    BLOCK_LIMIT_FACTOR,
    BadDirective,
    BlockingReload,
    Outcome,
    parse_directives,
)
from server.hls.buffer import PartBuffer
from server.hls.http import IMMUTABLE, PLAYLIST, TYPES
from server.hls.names import ResourceKind, parse_name
from server.hls.packager import HlsPackager, HlsService
from server.hls.playlist import check_suffix

MAX_HEAD = 8190
"""Longer heads go to aiohttp (which refuses them as it always did)."""
MAX_BUFFERED = 65536
"""Bytes read ahead (pipelined requests) while a request is held or a write waits: more
and the connection stops being read until they are answered."""
_REFUSED = frozenset({b"content-length", b"transfer-encoding", b"expect", b"upgrade", b"range"})
# What aiohttp's (strict) parser accepts, so that a request it refuses with 400 (a control
# character, a bare CR or LF, a header name that is no token) goes to it to be refused.
_TARGET = re.compile(rb"/live/[!-~]*")
_FIELDS = re.compile(rb"(?:\r\n[-!#$%&'*+.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*)*")
"""The header lines after the request line (one match for all: cheaper than one a line)."""
_SINGLETONS = frozenset(
    {b"content-location", b"content-range", b"content-type", b"etag", b"host"}
    | {b"max-forwards", b"server", b"user-agent"}
)
"""Headers aiohttp refuses twice (RFC 9110 singletons; the body's are refused here)."""
_MAX_HEADERS = 128
"""aiohttp's limit on header lines."""
_PLAYLIST_HEAD = (
    f"HTTP/1.1 200 OK\r\nContent-Type: {PLAYLIST}\r\n"
    "Cache-Control: no-cache\r\nAccess-Control-Allow-Origin: *\r\n"
).encode()
_STREAM_HEAD = (
    f"HTTP/1.1 200 OK\r\nContent-Type: {TYPES['m4s']}\r\nCache-Control: {IMMUTABLE}\r\n"
    "Access-Control-Allow-Origin: *\r\nTransfer-Encoding: chunked\r\n"
).encode()
_HEADS = {
    kind: (
        f"HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nCache-Control: {IMMUTABLE}\r\n"
        "Access-Control-Allow-Origin: *\r\nAccept-Ranges: bytes\r\n"
    ).encode()
    for kind in TYPES.values()
}
"""Heads of the immutable resources (init segments, segments, parts) by content type."""
ErrorBody = Callable[[int, str], tuple[str, bytes]]
"""(status, detail) -> (content type, body) of an error answered after a wait."""


def text_error(status: int, detail: str) -> tuple[str, bytes]:
    """aiohttp's own error shape: the detail as plain text."""
    return "text/plain; charset=utf-8", f"{detail}\n".encode()


class _Clock:
    """The ``Date`` header, formatted once per second."""

    __slots__ = ("_line", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._line = b""

    def date_line(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._line = f"Date: {email.utils.formatdate(now, usegmt=True)}\r\n".encode()
        return self._line


class FastHls:
    """Shared state of the fast protocols of one listener: the service, the rendered
    playlist responses, the idle-connection sweep."""

    def __init__(
        self, service: HlsService, keepalive_timeout: float, error_body: ErrorBody = text_error
    ) -> None:
        self.service = service
        self.keepalive_timeout = keepalive_timeout
        self.error_body = error_body
        self.clock = _Clock()
        self.answered = 0  # requests answered here, not by aiohttp
        self._rendered: dict[tuple[HlsPackager, int, bool, str], bytes] = {}
        self._rendered_date = b""
        self._connections: set[FastProtocol] = set()
        self._sweep: asyncio.TimerHandle | None = None

    def factory(self, inner: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """What the listener gets instead of ``inner`` (aiohttp's protocol factory)."""
        return lambda: FastProtocol(self, inner)

    def playlist(self, packager: HlsPackager, skip: bool, suffix: str) -> bytes | None:
        """The whole 200 response for this playlist version, suffix and second."""
        date = self.clock.date_line()
        if date != self._rendered_date or len(self._rendered) > 4096:
            self._rendered.clear()  # a new Date line; or many streams and viewer tokens
            self._rendered_date = date
        key = (packager, packager.segmenter.version, skip, suffix)
        found = self._rendered.get(key)
        if found is not None:
            return found
        text = packager.segmenter.media_playlist(skip=skip, suffix=suffix)
        if text is None:
            return None
        body = text.encode()
        response = b"%sContent-Length: %d\r\n%s\r\n%s" % (_PLAYLIST_HEAD, len(body), date, body)
        self._rendered[key] = response
        return response

    def error(self, status: int, reason: str, detail: str, extra: str = "") -> bytes:
        content_type, body = self.error_body(status, detail)
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Cache-Control: no-cache\r\nAccess-Control-Allow-Origin: *\r\n{extra}"
            f"Content-Length: {len(body)}\r\n"
        )
        return head.encode() + self.clock.date_line() + b"\r\n" + body

    def opened(self, connection: FastProtocol) -> None:
        self._connections.add(connection)
        if self._sweep is None:
            loop = asyncio.get_running_loop()
            self._sweep = loop.call_later(self.keepalive_timeout / 2, self._close_idle)

    def closed(self, connection: FastProtocol) -> None:
        self._connections.discard(connection)

    def _close_idle(self) -> None:
        """One sweep for all connections instead of a keep-alive timer per response."""
        self._sweep = None
        now = asyncio.get_running_loop().time()
        limit = self.keepalive_timeout
        for connection in [c for c in self._connections if c.idle_for(now) > limit]:
            connection.close()
        if self._connections:
            loop = asyncio.get_running_loop()
            self._sweep = loop.call_later(self.keepalive_timeout / 2, self._close_idle)


class _Held:
    """A blocking reload waiting on a packager's :class:`HeldReloads`."""

    __slots__ = ("connection", "packager", "reload", "skip", "suffix")

    def __init__(
        self,
        connection: FastProtocol,
        packager: HlsPackager,
        reload: BlockingReload,
        skip: bool,
        suffix: str,
    ) -> None:
        self.connection = connection
        self.packager = packager
        self.reload = reload
        self.skip = skip
        self.suffix = suffix

    @property
    def deadline(self) -> float:
        return self.reload.deadline

    def settle(self, now: float) -> bool:
        connection = self.connection
        if connection.held is not self:
            return True  # the connection went away
        decision = self.reload.decide(self.packager.segmenter.edge(), now)
        if decision.outcome is Outcome.WAIT:
            return False
        connection.answer_held(self, decision.outcome, decision.reason, now)
        return True

    def leave(self) -> None:
        self.packager.held.drop(self)


class _Streaming:
    """A part sent while it is written (chunked transfer): every data change of the
    packager appends the new chunks, by reference, in the same pass for all streams."""

    __slots__ = ("buffer", "connection", "deadline", "packager", "sent")

    def __init__(
        self, connection: FastProtocol, packager: HlsPackager, buffer: PartBuffer, deadline: float
    ) -> None:
        self.connection = connection
        self.packager = packager
        self.buffer = buffer
        self.deadline = deadline
        self.sent = 0
        packager.streaming += 1  # from now on the packager flushes a chunk per frame

    def settle(self, now: float) -> bool:
        connection = self.connection
        if connection.held is not self:
            return True  # the connection went away
        done = self.buffer.complete
        pieces = self.buffer.pieces_from(self.sent)
        if pieces:
            connection.send_chunks(pieces)
            self.sent += sum(len(piece) for piece in pieces)
        if done:
            connection.end_stream(self, cut=False)
        elif self.packager.segmenter.ended or now >= self.deadline:
            connection.end_stream(self, cut=True)  # never a clean end: not a whole part
        else:
            return False
        return True

    def leave(self) -> None:
        self.packager.feeding.drop(self)
        self.packager.streaming -= 1


class FastProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection: answered here while it asks for hot HLS resources,
    then aiohttp's for good from the first request it does not."""

    def __init__(self, fast: FastHls, inner: Callable[[], asyncio.Protocol]) -> None:
        self._fast = fast
        self._make_inner = inner
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._remote = ""
        self._paused = False
        self._reading = True
        self._last = 0.0
        self.held: _Held | _Streaming | None = None

    # ------------------------------------------------------------------ transport side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        peer: Any = transport.get_extra_info("peername")
        self._remote = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        self._last = asyncio.get_running_loop().time()
        self._fast.opened(self)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)
            return
        self._buffer += data
        self._serve()
        if self._reading and len(self._buffer) > MAX_BUFFERED and self._transport is not None:
            self._reading = False
            self._transport.pause_reading()

    def eof_received(self) -> bool | None:
        if self._inner is not None:
            return self._inner.eof_received()
        return None  # close: nothing half-sent is worth keeping

    def pause_writing(self) -> None:
        self._paused = True
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._paused = False
        if self._inner is not None:
            self._inner.resume_writing()
        else:
            self._serve()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fast.closed(self)
        self._forget_held()
        self._transport = None
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def idle_for(self, now: float) -> float:
        """Seconds since the last response (0 while a request is held or handed over)."""
        if self.held is not None or self._inner is not None:
            return 0.0
        return now - self._last

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    # ------------------------------------------------------------------ requests

    def _serve(self) -> None:
        """Answer complete request heads in order while nothing is held or paused."""
        while self.held is None and not self._paused and self._inner is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD or b"\n\n" in self._buffer:
                    self._hand_over()
                    return
                break
            if not self._request(self._buffer[:end]):
                self._hand_over()
                return
            self._buffer = self._buffer[end + 4 :]
        if not self._reading and len(self._buffer) <= MAX_BUFFERED:
            self._resume_reading()

    def _resume_reading(self) -> None:
        self._reading = True
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def _hand_over(self) -> None:
        """From now on aiohttp serves this connection, from the first unanswered byte."""
        self._fast.closed(self)
        inner = self._inner = self._make_inner()
        inner.connection_made(cast(asyncio.BaseTransport, self._transport))
        if self._paused:
            inner.pause_writing()
        if not self._reading:  # aiohttp's parser has its own flow control
            self._resume_reading()
        data, self._buffer = self._buffer, b""
        if data:
            inner.data_received(data)

    def _request(self, head: bytes) -> bool:
        """Answer (or hold) one request; False when aiohttp must serve it."""
        lines = head.split(b"\r\n")
        start = lines[0].split(b" ")
        if len(start) != 3 or start[0] != b"GET" or start[2] != b"HTTP/1.1":
            return False
        target = start[1]
        if not _TARGET.fullmatch(target) or b"%" in target or b"+" in target:
            return False
        if len(lines) > _MAX_HEADERS + 1 or not _FIELDS.fullmatch(head, len(lines[0])):
            return False
        agent = b""
        seen: set[bytes] = set()
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            lowered = name.lower()
            if lowered in _REFUSED:
                return False
            if lowered in _SINGLETONS:
                if lowered in seen:
                    return False
                seen.add(lowered)
            if lowered == b"connection" and value.strip().lower() != b"keep-alive":
                return False
            if lowered == b"user-agent":
                agent = value.strip()
        if b"host" not in seen:  # aiohttp refuses HTTP/1.1 without one
            return False
        try:
            return self._route(target.decode("ascii"), agent.decode("utf-8", "surrogateescape"))
        except (UnicodeDecodeError, ValueError):
            return False

    def _route(self, target: str, agent: str) -> bool:
        path, _, raw_query = target.partition("?")
        parts = path.split("/")
        if len(parts) not in (4, 5) or not all(parts[2:]) or "#" in target:
            return False
        packager = self._fast.service.get(parts[2])
        resource = parse_name(parts[-1])
        if packager is None or packager.ended_at is not None or resource is None:
            return False  # 404, or the proxy's or a lingering session's business
        if len(parts) == 5:
            found = packager.renditions.get(parts[3])
            if found is None:
                return False
            packager = found
        query: dict[str, str] = {}
        for pair in raw_query.split("&") if raw_query else ():
            key, _, value = pair.partition("=")
            query.setdefault(key, value)
        token = query.get("token", "")
        if packager.info.private and not self._token_ok(packager, token):
            return False
        suffix = check_suffix(f"?token={token}" if token else "")
        kind = resource.kind
        seg = packager.segmenter
        if kind is ResourceKind.PART:
            buffer = seg.part(resource.number, resource.part)
            if buffer is not None and buffer.complete:
                return self._bytes("part", TYPES["m4s"], buffer.data)
            hint = seg.preload_hint
            hinted = hint is not None and (resource.number, resource.part) >= hint
            if buffer is None or not hinted or not seg.settings.chunked_parts:
                return False  # not there yet: aiohttp waits for it
            return self._stream(packager, buffer)
        if kind is ResourceKind.SEGMENT:
            body = seg.segment(resource.number, resource.extension)
            return body is not None and self._bytes("segment", TYPES[resource.extension], body)
        if kind is ResourceKind.INIT:
            body = seg.init_segment(resource.number)
            return body is not None and self._bytes("init", TYPES["mp4"], body)
        if not packager.viewers.admit(f"{self._remote}|{agent}", time.monotonic()):
            return False  # 429
        if kind is ResourceKind.MEDIA:
            return self._media(packager, query, suffix)
        return len(parts) == 4 and self._master(packager, suffix)

    def _token_ok(self, packager: HlsPackager, token: str) -> bool:
        key = self._fast.service.playback_key
        return bool(key) and tokens.verify(key, packager.info.edge_id, token, time.time())

    def _bytes(self, kind: str, content_type: str, data: bytes | memoryview) -> bool:
        date = self._fast.clock.date_line()
        head = b"%sContent-Length: %d\r\n%s\r\n" % (_HEADS[content_type], len(data), date)
        self._write(head, data)
        self._count(kind, 200)
        return True

    def _stream(self, packager: HlsPackager, buffer: PartBuffer) -> bool:
        """Start sending a hinted part as it is written; it must complete within the
        blocking bound (3 target durations) or the connection is cut."""
        date = self._fast.clock.date_line()
        self._write(_STREAM_HEAD + date + b"\r\n")
        loop = asyncio.get_running_loop()
        limit = BLOCK_LIMIT_FACTOR * packager.segmenter.target_duration
        streaming = _Streaming(self, packager, buffer, loop.time() + limit)
        self.held = streaming
        self._count("part", 200)
        pieces = buffer.pieces_from(0)  # not complete (checked), so it is held below
        self.send_chunks(pieces)
        streaming.sent = sum(len(piece) for piece in pieces)
        packager.feeding.hold(streaming)
        return True

    def send_chunks(self, pieces: list[bytes | memoryview]) -> None:
        """Chunked-transfer framing around each piece, written by reference."""
        out: list[bytes | memoryview] = []
        for piece in pieces:
            out += (b"%x\r\n" % len(piece), piece, b"\r\n")
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.writelines(out)

    def end_stream(self, streaming: _Streaming, *, cut: bool) -> None:
        self.held = None
        streaming.packager.streaming -= 1
        if cut:
            self.close()
            return
        self._write(b"0\r\n\r\n")
        self._serve()

    def _master(self, packager: HlsPackager, suffix: str) -> bool:
        """Once the ladder is complete (before, aiohttp's handler waits for it)."""
        if not packager.ladder_ready():
            return False
        text = packager.master_playlist(suffix)
        if text is None:
            return False
        body = text.encode()
        date = self._fast.clock.date_line()
        self._write(b"%sContent-Length: %d\r\n%s\r\n%s" % (_PLAYLIST_HEAD, len(body), date, body))
        self._count("master", 200)
        return True

    def _media(self, packager: HlsPackager, query: dict[str, str], suffix: str) -> bool:
        seg = packager.segmenter
        try:
            directives = parse_directives(query)
        except BadDirective:
            return False
        if not seg.has_segment and not seg.ended and not directives.blocking:
            return False  # held until the first segment: aiohttp's wait
        if not directives.blocking:
            return self._send_playlist(packager, directives.skip, suffix)
        now = asyncio.get_running_loop().time()
        reload = seg.blocking_reload(directives, now)
        decision = reload.decide(seg.edge(), now)
        if decision.outcome is Outcome.READY:
            self._fast.service.stats.blocking_wait.observe(0.0)
            return self._send_playlist(packager, directives.skip, suffix)
        if decision.outcome is not Outcome.WAIT:
            return False  # 400 at once: aiohttp says why
        self.held = _Held(self, packager, reload, directives.skip, suffix)
        packager.held.hold(self.held)
        return True

    def answer_held(self, held: _Held, outcome: Outcome, reason: str, now: float) -> None:
        """A held reload is settled: the playlist, or 503 after a vain wait."""
        self.held = None
        fast = self._fast
        if outcome is Outcome.READY:
            fast.service.stats.blocking_wait.observe(now - held.reload.started)
            if not self._send_playlist(held.packager, held.skip, held.suffix):
                self._write(fast.error(404, "Not Found", "playlist (no media yet) not found"))
                self._count("media", 404)
        else:
            status, phrase = (503, "Service Unavailable")
            if outcome is Outcome.BAD_REQUEST:
                status, phrase = (400, "Bad Request")
            retry = f"Retry-After: {held.packager.segmenter.target_duration}\r\n"
            self._write(fast.error(status, phrase, reason, retry if status == 503 else ""))
            self._count("media", status)
        self._serve()

    def _send_playlist(self, packager: HlsPackager, skip: bool, suffix: str) -> bool:
        response = self._fast.playlist(packager, skip, suffix)
        if response is None:
            return False  # 404: aiohttp's
        self._write(response)
        self._count("media", 200)
        return True

    def _write(self, head: bytes, body: bytes | memoryview = b"") -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if body:
            transport.writelines((head, body))
        else:
            transport.write(head)
        self._last = asyncio.get_running_loop().time()

    def _count(self, kind: str, status: int) -> None:
        self._fast.service.stats.requests[(kind, status)] += 1
        self._fast.answered += 1

    def _forget_held(self) -> None:
        held, self.held = self.held, None
        if held is not None:
            held.leave()
