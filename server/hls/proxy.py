"""HLS of a stream another node carries: fetched from that node and passed on.

A node asked for ``/live/{edgeId}/…`` of a stream whose encoder is on another node
proxies the request to the owner's internal listener rather than redirecting to it:
the viewer (and any cache in front, e.g. ``configs/edge-nginx.conf``) keeps one URL
per resource whichever node answers, relative URIs in the playlists stay on that
URL, and node addresses are never shown to viewers. A redirect would save this
node the bytes but expose node URLs, and a cache in front would key the same
segment once per node and send players to origins behind its back.

The owner answers blocking reloads (``_HLS_msn``/``_HLS_part`` pass through in the
query) and streams growing parts itself; this node forwards bytes as they arrive.
Everything is bounded: a connection pool of its own, a connect timeout and a whole-
request timeout (longer than the longest blocking reload), a body size limit. Only
the owner the database names for that edge id is asked (``OwnerLookup``), and the
owner's internal listener only serves its own packagers, so a request can neither
loop between nodes nor reach a stream the edge id does not name.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from aiohttp import web

from server.tasks import BackgroundTasks

log = logging.getLogger("relaycast.hls.proxy")

VIEWER_HEADER = "Relaycast-Viewer"
"""The viewer's address, sent to the owner's internal listener (which trusts it) so
that a plan's viewer limit counts viewers, not the proxying node."""
FORWARDED_REQUEST = ("Range", "User-Agent")
FORWARDED_RESPONSE = (
    "Content-Type",
    "Cache-Control",
    "Content-Range",
    "Accept-Ranges",
    "Retry-After",
    "Access-Control-Allow-Origin",
)
LOOKUPS_KEPT = 4096
"""Edge ids whose owner is remembered at most (the least recently used go)."""
CHUNK = 64 * 1024


class OwnerLookup(Protocol):
    async def owner_url(self, edge_id: str) -> str | None:
        """The internal base URL of the live node that carries the stream of this edge
        id (not this node), or None."""


@dataclass(frozen=True, slots=True)
class ProxyLimits:
    timeout: float
    """Seconds a whole proxied request may take (a blocking reload included)."""
    connect_timeout: float
    max_body_bytes: int
    max_connections: int
    lookup_seconds: float
    """How long an edge id's owner (or that it has none) is remembered."""


class HlsProxy:
    def __init__(self, lookup: OwnerLookup, limits: ProxyLimits) -> None:
        self._lookup = lookup
        self._limits = limits
        self._owners: OrderedDict[str, tuple[float, str | None]] = OrderedDict()
        self._http: aiohttp.ClientSession | None = None
        self._refreshing: set[str] = set()
        self._tasks = BackgroundTasks(log, "could not look up which node carries a stream")

    async def owner(self, edge_id: str) -> str | None:
        """One database query per edge id per ``lookup_seconds``, never on a player's
        request path once its stream is known: a known owner past its time is still
        used while one refresh runs in the background (a moved stream is followed
        within about ``lookup_seconds``; a node that stops answering is forgotten at
        once). Unknown edge ids are looked up now, and remembered too, so a burst of
        requests for one costs one query."""
        now = asyncio.get_running_loop().time()
        cached = self._owners.get(edge_id)
        if cached is not None:
            self._owners.move_to_end(edge_id)
            if cached[0] <= now and cached[1] is not None:
                self._refresh(edge_id)
            if cached[0] > now or cached[1] is not None:
                return cached[1]
        return await self._look_up(edge_id)

    async def _look_up(self, edge_id: str) -> str | None:
        url = await self._lookup.owner_url(edge_id)
        self._owners[edge_id] = (
            asyncio.get_running_loop().time() + self._limits.lookup_seconds,
            url,
        )
        self._owners.move_to_end(edge_id)
        while len(self._owners) > LOOKUPS_KEPT:
            self._owners.popitem(last=False)
        return url

    def _refresh(self, edge_id: str) -> None:
        if edge_id not in self._refreshing:
            self._refreshing.add(edge_id)
            self._tasks.spawn(self._refreshed(edge_id))

    async def _refreshed(self, edge_id: str) -> None:
        try:
            await self._look_up(edge_id)
        finally:
            self._refreshing.discard(edge_id)

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            limits = self._limits
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(
                    total=limits.timeout, sock_connect=limits.connect_timeout
                ),
                connector=aiohttp.TCPConnector(limit=limits.max_connections),
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
            )
        return self._http

    async def forward(self, request: web.Request) -> web.StreamResponse | None:
        """The owner's answer to this request, or None when no other node carries it."""
        base = await self.owner(request.match_info["edgeId"])
        if base is None:
            return None
        headers = {h: request.headers[h] for h in FORWARDED_REQUEST if h in request.headers}
        headers[VIEWER_HEADER] = request.remote or ""
        url = base.rstrip("/") + str(request.rel_url)
        try:
            async with self._session().get(url, headers=headers, allow_redirects=False) as up:
                if up.status == 404:  # the stream may have moved: look again next time
                    self._owners.pop(request.match_info["edgeId"], None)
                return await self._relay(request, up)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("hls proxy: the owner node did not answer (%s)", type(exc).__name__)
            self._owners.pop(request.match_info["edgeId"], None)
            raise web.HTTPBadGateway(
                text="the node carrying this stream did not answer\n",
                headers={"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"},
            ) from None

    async def _relay(self, request: web.Request, up: aiohttp.ClientResponse) -> web.StreamResponse:
        limit = self._limits.max_body_bytes
        if up.content_length is not None and up.content_length > limit:
            raise aiohttp.ClientPayloadError("body over the proxy's limit")
        response = web.StreamResponse(
            status=up.status,
            headers={h: up.headers[h] for h in FORWARDED_RESPONSE if h in up.headers},
        )
        if up.content_length is not None:
            response.content_length = up.content_length
        else:
            response.enable_chunked_encoding()
        await response.prepare(request)
        sent = 0
        try:
            async for chunk in up.content.iter_chunked(CHUNK):
                sent += len(chunk)
                if sent > limit:
                    break
                await response.write(chunk)
        except (aiohttp.ClientError, TimeoutError):
            sent = limit + 1
        if sent > limit or not up.content.is_eof():
            # cut, never a clean end: a truncated body must not pass for a whole one
            if request.transport is not None:
                request.transport.close()
            return response
        await response.write_eof()
        return response

    async def close(self) -> None:
        await self._tasks.close()
        if self._http is not None:
            await self._http.close()
            self._http = None
