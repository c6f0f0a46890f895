"""RTMP and SRT players of a stream another node carries: one upstream per stream per
node.

On a shared database an RTMP or SRT player may reach any node. A node asked to play an
edge id it does not carry pulls the stream from the owner's internal listener (the one
other nodes proxy HLS from: ``GET /relay/{edgeId}``) into a bus stream of its own and
feeds its players from that exactly as if an encoder were publishing here (the same
fanout, GOP start and late-joiner rules). Over HTTP rather than an RTMP play to the
owner's public port: the internal listener is already the node-to-node channel (found
in the node registry, reachable between nodes only, playback only), so the owner need
not tell a relay from a viewer, count it, or check a token for it, and the frames
travel as they are on the bus, with no RTMP handshake or chunking to redo.

One upstream per edge id per node, however many players join; players that arrive
while it connects wait for it (``connect_timeout``). It ends when the owner ends the
stream or stops sending for ``timeout`` seconds (the players then see the stream end),
and is torn down once it has had no player for ``connect_timeout`` seconds. Tokens,
the SRT passphrase and the plan's ``maxClients`` are checked here against the owner's
grant (sent in the ``Relaycast-Grant`` header); a relay reaches only the stream its
edge id names, in that stream's environment. ``maxClients`` and the session's viewer
figures count the viewers of all nodes: each relay tells the owner its node's players
(``PUT /relay/{edgeId}/players``, by protocol, with its views)
and the owner sends each relay the count of all the others (an audience record), every
``AUDIENCE_INTERVAL`` when it changed, so a limit may be overshot by the players that
join on several nodes within that second.

Wire format, one record per bus item: type (1 byte: 8 audio, 9 video as in FLV, 0 a
discontinuity, 1 the audience), the FLV timestamp (signed 64-bit ms), body length (32-bit), then the
FLV tag body (``server.media.flv``), so configurations and frames of every codec FLV
carries make the trip and are parsed back by the ingest's own parser.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import secrets
import struct
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Protocol
from urllib.parse import quote

import aiohttp
from aiohttp import web

from server.bus import Stream, StreamGrant
from server.bus.grant import PlanLimits
from server.bus.items import ConfigChange, Discontinuity, EndOfStream
from server.media.errors import MediaFormatError
from server.media.flv import FlvTagParser, build_tag_body, tag_timestamp_ms
from server.media.frame import CodecConfig, Frame, TrackKind
from server.playback.viewers import RelayedAudience

log = logging.getLogger("relaycast.playback.relay")

GRANT_HEADER = "Relaycast-Grant"
RECORD = struct.Struct(">BqI")
_TYPES = {TrackKind.AUDIO: 8, TrackKind.VIDEO: 9}


class RelayError(Exception):
    """The relay stream is malformed or over its bounds."""


def encode_item(item: Frame | CodecConfig, timestamp_ms: int) -> bytes:
    body = build_tag_body(item)
    return RECORD.pack(_TYPES[item.track], timestamp_ms, len(body)) + body


DISCONTINUITY = RECORD.pack(0, 0, 0)
"""The owner's timestamps jump (its encoder came back): players here are told too."""
AUDIENCE = 1
"""Record type: the stream's viewers on the owner and on other relaying nodes (in the
timestamp field), for this node's maxClients."""
AUDIENCE_INTERVAL = 1.0
"""Seconds between counts exchanged with the owner: the count across nodes lags by
about this much."""
MAX_PLAYERS = 1_000_000


@dataclass(frozen=True, slots=True)
class Audience:
    viewers: int


class RelayDecoder:
    """Records back into configs and frames; ``max_record`` bounds what it buffers."""

    def __init__(self, max_record: int) -> None:
        self._buf = bytearray()
        self._max = max_record
        self._flv = FlvTagParser()

    def feed(self, data: bytes) -> list[Frame | CodecConfig | Discontinuity | Audience]:
        self._buf += data
        out: list[Frame | CodecConfig | Discontinuity | Audience] = []
        while len(self._buf) >= RECORD.size:
            kind, timestamp, size = RECORD.unpack_from(self._buf)
            if kind in (0, AUDIENCE) and size == 0:
                del self._buf[: RECORD.size]
                out.append(Discontinuity() if kind == 0 else Audience(max(timestamp, 0)))
                continue
            if size > self._max or kind not in (8, 9):
                raise RelayError(f"bad relay record (type {kind}, {size} bytes)")
            end = RECORD.size + size
            if len(self._buf) < end:
                break
            body = bytes(self._buf[RECORD.size : end])
            del self._buf[:end]
            try:
                parse = self._flv.video if kind == 9 else self._flv.audio
                result = parse(body, timestamp)
            except MediaFormatError as exc:
                raise RelayError(str(exc)) from None
            if isinstance(result, Frame | CodecConfig):
                out.append(result)
        return out


# ---------------------------------------------------------------- the owner's side


class RelaySource(Protocol):
    def relayable(self, edge_id: str) -> tuple[StreamGrant, Stream] | None:
        """A stream live on this node (never one it relays itself), or None."""

    def relay_reader_limits(self) -> tuple[int, int]:
        """A relay reader's ring bounds (frames, bytes)."""

    def relay_players(
        self,
        edge_id: str,
        relay: str,
        players: int | None,
        *,
        start: bool = False,
        audience: RelayedAudience | None = None,
    ) -> bool: ...

    def audience(self, edge_id: str, relay: str) -> int | None: ...


async def _serve(source: RelaySource, request: web.Request) -> web.StreamResponse:
    found = source.relayable(request.match_info["edgeId"])
    if found is None:
        raise web.HTTPNotFound(text="no live stream by that name on this node\n")
    grant, stream = found
    edge_id, relay = grant.edge_id, request.query.get("relay", "")[:64]
    frames, size = source.relay_reader_limits()
    reader = stream.reader("relay", "relay", max_frames=frames, max_bytes=size)
    source.relay_players(edge_id, relay, 0, start=True)
    # the SRT passphrase included (SRT players there need it): between nodes only
    response = web.StreamResponse(headers={GRANT_HEADER: json.dumps(asdict(grant))})
    response.enable_chunked_encoding()
    loop = asyncio.get_running_loop()
    told, due = -1, 0.0
    try:
        await response.prepare(request)
        while True:
            item = reader.next_nowait()  # what is queued needs no wait (nor its task)
            if item is None:
                try:
                    item = await asyncio.wait_for(reader.next(), AUDIENCE_INTERVAL)
                except TimeoutError:  # a silent stream: is the other node still there?
                    if request.transport is None or request.transport.is_closing():
                        break
                    continue
            if isinstance(item, EndOfStream):
                break
            if isinstance(item, ConfigChange):
                await response.write(encode_item(item.config, 0))
            elif isinstance(item, Frame) and item.track in _TYPES:
                await response.write(encode_item(item, tag_timestamp_ms(item)))
            elif isinstance(item, Discontinuity):
                await response.write(DISCONTINUITY)
            if loop.time() >= due:
                due = loop.time() + AUDIENCE_INTERVAL
                viewers = source.audience(edge_id, relay)
                if viewers is not None and viewers != told:
                    await response.write(RECORD.pack(AUDIENCE, viewers, 0))
                    told = viewers
        await response.write_eof()
    except (ConnectionError, ValueError):  # the other node left, or a codec FLV lacks
        pass
    finally:
        reader.close()
        source.relay_players(edge_id, relay, None)
    return response


async def _players(source: RelaySource, request: web.Request) -> web.Response:
    """A relaying node's players of this node's stream (counted for maxClients)."""
    try:
        players = int(request.query.get("n", ""))
    except ValueError:
        raise web.HTTPBadRequest(text="n: a number of players\n") from None
    if not 0 <= players <= MAX_PLAYERS:
        raise web.HTTPBadRequest(text="n: a number of players\n")
    try:
        rtmp, srt, webrtc, views = (
            int(request.query.get(name, "0")) for name in ("rtmp", "srt", "webrtc", "views")
        )
    except ValueError:
        raise web.HTTPBadRequest(text="rtmp, srt, webrtc, views: numbers\n") from None
    if not all(0 <= n <= MAX_PLAYERS for n in (rtmp, srt, webrtc)) or views < 0:
        raise web.HTTPBadRequest(text="rtmp, srt, webrtc, views: numbers\n")
    audience = RelayedAudience(rtmp, srt, webrtc, views)
    relay = request.query.get("relay", "")[:64]
    if not source.relay_players(request.match_info["edgeId"], relay, players, audience=audience):
        raise web.HTTPNotFound(text="no such relay\n")
    return web.Response(status=204)


def mount_source(app: web.Application, source: RelaySource) -> None:
    """On the internal listener only: other nodes relay from it."""
    app.router.add_get("/relay/{edgeId}", functools.partial(_serve, source))
    app.router.add_put("/relay/{edgeId}/players", functools.partial(_players, source))


# ---------------------------------------------------------------- this node's side


class RelayTarget(Protocol):
    """The playback service: where a relayed stream becomes playable by its edge id."""

    def relay_opened(self, grant: StreamGrant, stream: Stream) -> None: ...

    def relay_closed(self, edge_id: str, stream: Stream) -> None: ...

    def players(self, edge_id: str) -> int: ...

    def relayed_audience(self, edge_id: str) -> RelayedAudience: ...

    def relay_elsewhere(self, edge_id: str, stream: Stream, viewers: int) -> None: ...


@dataclass(frozen=True, slots=True)
class RelayLimits:
    timeout: float
    """Seconds the owner may stay silent before the relay ends."""
    connect_timeout: float
    """Seconds to connect and get the owner's answer; also how long a relay without
    players is kept."""
    max_record_bytes: int
    max_connections: int
    """Upstreams at once (beyond: players wait, then are refused as not live)."""


def _grant(header: str) -> StreamGrant:
    fields = json.loads(header)
    limits = fields.pop("limits", None)
    return StreamGrant(**fields, limits=PlanLimits(**limits) if limits else None)


class PlayerRelays:
    """The upstreams of this node, by edge id (one each)."""

    def __init__(
        self,
        owner: Callable[[str], Awaitable[str | None]],
        target: RelayTarget,
        limits: RelayLimits,
    ) -> None:
        self._owner = owner  # the HLS proxy's: cached, one query per edge id and period
        self._target = target
        self._limits = limits
        self._ready: dict[str, asyncio.Future[bool]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None

    async def attach(self, edge_id: str) -> bool:
        """Whether the stream is now playable here (relayed from its owner)."""
        ready = self._ready.get(edge_id)
        if ready is None:
            ready = asyncio.get_running_loop().create_future()
            self._ready[edge_id] = ready
            task = asyncio.get_running_loop().create_task(self._run(edge_id, ready))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            return await asyncio.wait_for(asyncio.shield(ready), self._limits.connect_timeout)
        except TimeoutError:
            return False

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            limits = self._limits
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(
                    sock_connect=limits.connect_timeout, sock_read=limits.timeout
                ),
                connector=aiohttp.TCPConnector(limit=limits.max_connections),
                auto_decompress=False,
            )
        return self._http

    async def _run(self, edge_id: str, ready: asyncio.Future[bool]) -> None:
        stream: Stream | None = None
        try:
            base = await self._owner(edge_id)
            if base is None:
                return
            url = f"{base.rstrip('/')}/relay/{quote(edge_id, safe='')}"
            relay = secrets.token_hex(8)
            async with asyncio.timeout(self._limits.connect_timeout):
                up = await self._session().get(url, params={"relay": relay}, allow_redirects=False)
            with contextlib.closing(up):  # never back to the pool: the body is endless
                if up.status != 200 or GRANT_HEADER not in up.headers:
                    return
                grant = _grant(up.headers[GRANT_HEADER])
                if grant.edge_id != edge_id:
                    return
                stream = Stream(grant.stream_id)
                self._target.relay_opened(grant, stream)
                ready.set_result(True)
                report = asyncio.get_running_loop().create_task(self._report(edge_id, url, relay))
                try:
                    await self._pump(edge_id, up, stream)
                finally:
                    report.cancel()
        except (aiohttp.ClientError, TimeoutError, RelayError, ValueError, TypeError) as exc:
            log.warning("relay of %r ended: %s %r", edge_id[:64], type(exc).__name__, str(exc))
        except Exception:  # the owner's lookup (the database) or our bug: this relay only
            log.exception("relay of %r failed", edge_id[:64])
        finally:
            if self._ready.get(edge_id) is ready:
                del self._ready[edge_id]
            if not ready.done():
                ready.set_result(False)
            if stream is not None:
                stream.end("relay ended")
                self._target.relay_closed(edge_id, stream)

    async def _report(self, edge_id: str, url: str, relay: str) -> None:
        """This node's players, to the owner when they change (for its maxClients and,
        by protocol with this node's views, for the session's figures)."""
        told = RelayedAudience()
        while True:
            await asyncio.sleep(AUDIENCE_INTERVAL)
            audience = self._target.relayed_audience(edge_id)
            if audience == told:
                continue
            params = {"relay": relay, "n": str(audience.players), "views": str(audience.views)}
            params.update(rtmp=str(audience.rtmp), srt=str(audience.srt))
            params.update(webrtc=str(audience.webrtc))
            try:
                async with asyncio.timeout(self._limits.connect_timeout):
                    async with self._session().put(f"{url}/players", params=params) as answer:
                        if answer.status == 204:
                            told = audience
            except (aiohttp.ClientError, TimeoutError):
                pass  # told again next time

    async def _pump(self, edge_id: str, up: aiohttp.ClientResponse, stream: Stream) -> None:
        """Until the owner ends, or this node has had no player for ``connect_timeout``."""
        loop = asyncio.get_running_loop()
        decoder = RelayDecoder(self._limits.max_record_bytes)
        last_player = loop.time()
        async for chunk in up.content.iter_any():
            for item in decoder.feed(chunk):
                if isinstance(item, CodecConfig):
                    stream.set_config(item)
                elif isinstance(item, Discontinuity):
                    stream.mark_discontinuity()
                elif isinstance(item, Audience):
                    self._target.relay_elsewhere(edge_id, stream, item.viewers)
                else:
                    stream.publish(item)
            now = loop.time()
            if self._target.players(edge_id):
                last_player = now
            elif now - last_player > self._limits.connect_timeout:
                return

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
            self._http = None
