"""Playback over HTTP: ``/live/{edgeId}/…`` playlists, init segments, segments and parts.

Blocking playlist reloads, plain playlist requests before the first segment, and
preload-hinted parts wait on the packager's change signal, never poll. Segment and part
names are unique per session (their numbers start from the session's start time), so
they are served as immutable.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

from aiohttp import web

from server.hls import tokens
from server.hls.blocking import (
    BLOCK_LIMIT_FACTOR,
    BadDirective,
    Directives,
    Outcome,
    parse_directives,
)
from server.hls.buffer import PartBuffer
from server.hls.names import Resource, ResourceKind, parse_name
from server.hls.packager import HlsPackager, HlsService
from server.hls.proxy import VIEWER_HEADER, HlsProxy
from server.hls.signal import ChangeSignal

PLAYLIST = "application/vnd.apple.mpegurl"
TYPES = {"m4s": "video/iso.segment", "ts": "video/mp2t", "mp4": "video/mp4"}
IMMUTABLE = "public, max-age=31536000, immutable"
# ASCII digits, at most 18: int() raises on "²" and on more than 4300 digits.
_RANGE = re.compile(r"^bytes=(\d{0,18})-(\d{0,18})$", re.ASCII)
HLS_SERVICE = web.AppKey("hls_service", HlsService)
HLS_PROXY = web.AppKey("hls_proxy", HlsProxy)
"""Set on the public listener of a node that shares its database: streams other nodes
carry are fetched from them. Never on the internal listener, so nothing loops."""
TRUSTED_VIEWER = web.AppKey("hls_trusted_viewer", bool)
"""Set on the internal listener: the proxying node names the viewer."""


def _headers(cache: str) -> dict[str, str]:
    return {"Cache-Control": cache, "Access-Control-Allow-Origin": "*"}


def _not_found(what: str) -> web.HTTPNotFound:
    return web.HTTPNotFound(text=f"{what} not found\n", headers=_headers("no-cache"))


def _bytes_response(
    request: web.Request, body: bytes | memoryview, content_type: str
) -> web.Response:
    """Serve bytes, honouring a single ``Range`` (players and CDNs ask for them)."""
    headers = {**_headers(IMMUTABLE), "Accept-Ranges": "bytes"}
    match = _RANGE.match(request.headers.get("Range", ""))
    if not match or not any(match.groups()):
        return web.Response(body=body, content_type=content_type, headers=headers)
    first, last = match.groups()
    size = len(body)
    start = int(first) if first else max(size - int(last), 0)
    end = min(int(last), size - 1) if first and last else size - 1
    if start >= size or start > end:
        headers["Content-Range"] = f"bytes */{size}"
        raise web.HTTPRequestRangeNotSatisfiable(headers=headers)
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return web.Response(
        status=206, body=body[start : end + 1], content_type=content_type, headers=headers
    )


def _playlist(text: str) -> web.Response:
    return web.Response(body=text.encode(), content_type=PLAYLIST, headers=_headers("no-cache"))


async def _wait_for(
    packager: HlsPackager,
    ready: Callable[[], object],
    limit: float,
    signal: ChangeSignal | None = None,
) -> None:
    """Wait (bounded) until ``ready()`` is truthy or the stream ended; ``signal`` is the
    packager's playlist signal unless the caller needs to see every write."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    signal = signal or packager.signal
    while not ready() and not packager.segmenter.ended:
        if not await signal.wait(deadline - loop.time()):
            return


async def _master(packager: HlsPackager, suffix: str) -> web.Response:
    """Wait (bounded) for the source and for the renditions being transcoded: a player
    reads the multivariant playlist once, so one served without the ladder would never
    switch down. Past the bound it lists what is playable."""
    seg = packager.segmenter
    limit = 3 * seg.target_duration
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    await _wait_for(packager, lambda: seg.variant(), limit)
    while not packager.ladder_ready() and not seg.ended:
        if not await packager.ladder.wait(deadline - loop.time()):
            break
    text = packager.master_playlist(suffix)
    if text is None:
        raise _not_found("playlist (no media yet)")
    return _playlist(text)


async def _media(request: web.Request, packager: HlsPackager, suffix: str) -> web.Response:
    seg = packager.segmenter
    try:
        directives = parse_directives(request.query)
    except BadDirective as exc:
        raise web.HTTPBadRequest(text=f"{exc}\n", headers=_headers("no-cache")) from None
    if directives.blocking:
        await _block(request, packager, directives)
    else:
        await _hold_for_segment(packager)
    text = seg.media_playlist(skip=directives.skip, suffix=suffix)
    if text is None:
        raise _not_found("playlist (no media yet)")
    return _playlist(text)


async def _hold_for_segment(packager: HlsPackager) -> None:
    """Hold a plain playlist request until the first segment is complete.

    Before it the playlist lists only parts, which players without LL-HLS (ffmpeg, VLC,
    ExoPlayer) skip: opening the URL the moment the stream goes live, they would find no
    streams and give up. The bound is the blocking-reload one (3 x target duration, the
    first segment needs about one), then 503 with Retry-After of one target duration.
    Requests with ``_HLS_msn`` (hls.js after its first load) are answered by ``_block``.
    """
    seg = packager.segmenter
    await _wait_for(packager, lambda: seg.has_segment, BLOCK_LIMIT_FACTOR * seg.target_duration)
    if not seg.has_segment and not seg.ended:
        raise web.HTTPServiceUnavailable(
            text="no complete segment yet: retry shortly\n",
            headers={**_headers("no-cache"), "Retry-After": str(seg.target_duration)},
        )


async def _block(request: web.Request, packager: HlsPackager, directives: Directives) -> None:
    loop = asyncio.get_running_loop()
    seg = packager.segmenter
    started = loop.time()
    reload = seg.blocking_reload(directives, started)
    while True:
        decision = reload.decide(seg.edge(), loop.time())
        if decision.outcome is Outcome.READY:
            request.app[HLS_SERVICE].stats.blocking_wait.observe(loop.time() - started)
            return
        if decision.outcome is Outcome.BAD_REQUEST:
            raise web.HTTPBadRequest(text=f"{decision.reason}\n", headers=_headers("no-cache"))
        if decision.outcome is Outcome.UNAVAILABLE:  # a stalled stream: as _hold_for_segment
            raise web.HTTPServiceUnavailable(
                text=f"{decision.reason}\n",
                headers={**_headers("no-cache"), "Retry-After": str(seg.target_duration)},
            )
        await packager.signal.wait(decision.wait)


async def _part(
    request: web.Request, packager: HlsPackager, msn: int, index: int
) -> web.StreamResponse:
    seg = packager.segmenter
    limit = 3 * seg.target_duration

    def available() -> bool:
        buffer = seg.part(msn, index)
        return buffer is not None and buffer.complete

    hinted = seg.preload_hint is not None and (msn, index) >= seg.preload_hint
    if hinted and not available():
        if seg.settings.chunked_parts and "Range" not in request.headers:
            await _wait_for(
                packager, lambda: seg.part(msn, index) is not None, limit, packager.data
            )
            growing = seg.part(msn, index)
            if growing is not None and not growing.complete:
                return await _stream_part(request, packager, growing, limit)
        await _wait_for(packager, available, limit)
    buffer = seg.part(msn, index)
    if buffer is None or not buffer.complete:
        raise _not_found("part")
    return _bytes_response(request, buffer.data, TYPES["m4s"])


async def _stream_part(
    request: web.Request, packager: HlsPackager, buffer: PartBuffer, limit: float
) -> web.StreamResponse:
    """Send a part that is still being written as chunked transfer, each CMAF chunk as
    the packager appends it, and finish when the part closes: an Apple player that
    requested the preload hint gets the frames as early as the origin has them.

    The part must complete within ``limit`` seconds; otherwise the connection is cut
    (never a clean end), so the player cannot mistake a truncated part for a whole one.
    """
    packager.streaming += 1  # from now on the packager flushes a chunk per frame
    try:
        return await _send_growing(request, packager, buffer, limit)
    finally:
        packager.streaming -= 1


async def _send_growing(
    request: web.Request, packager: HlsPackager, buffer: PartBuffer, limit: float
) -> web.StreamResponse:
    response = web.StreamResponse(headers={**_headers(IMMUTABLE), "Content-Type": TYPES["m4s"]})
    response.enable_chunked_encoding()
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    sent = 0
    while True:
        done = buffer.complete
        for piece in buffer.pieces_from(sent):
            await response.write(piece)
            sent += len(piece)
        if done:
            await response.write_eof()
            return response
        if buffer.size == sent and not buffer.complete:
            ended = packager.segmenter.ended
            if ended or not await packager.data.wait(deadline - loop.time()):
                if request.transport is not None:
                    request.transport.close()
                return response


async def playback(request: web.Request) -> web.StreamResponse:
    """Serve one resource and count it by kind and status (metrics)."""
    resource = parse_name(request.match_info["name"])
    kind = resource.kind.value if resource is not None else "unknown"
    status = 500
    try:
        response = await _serve(request, resource)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        request.app[HLS_SERVICE].stats.requests[(kind, status)] += 1


async def _serve(request: web.Request, resource: Resource | None) -> web.StreamResponse:
    packager = request.app[HLS_SERVICE].get(request.match_info["edgeId"])
    proxy = request.app.get(HLS_PROXY)
    elsewhere = packager is None or packager.ended_at is not None
    if elsewhere and resource is not None and proxy is not None:
        # a session that ended here lingers; the stream may be live again on another node
        proxied = await proxy.forward(request)
        if proxied is not None:
            return proxied
    if packager is None or resource is None:
        raise _not_found("stream or resource")
    rendition = request.match_info.get("rendition")
    if rendition is not None:
        found = packager.renditions.get(rendition)
        if found is None or resource.kind is ResourceKind.MASTER:
            raise _not_found("rendition or resource")
        packager = found
    token = request.query.get("token", "")
    if packager.info.private and not _token_ok(request, packager, token):
        raise web.HTTPUnauthorized(
            text="this stream is private: add a valid ?token=\n", headers=_headers("no-cache")
        )
    suffix = f"?token={token}" if token else ""
    seg = packager.segmenter
    if resource.kind in (ResourceKind.MASTER, ResourceKind.MEDIA) and not _admit(request, packager):
        raise web.HTTPTooManyRequests(
            text="this stream has reached its plan's maximum of viewers\n",
            headers={**_headers("no-cache"), "Retry-After": "10"},
        )
    if resource.kind is ResourceKind.MASTER:
        return await _master(packager, suffix)
    if resource.kind is ResourceKind.MEDIA:
        return await _media(request, packager, suffix)
    if resource.kind is ResourceKind.PART:
        return await _part(request, packager, resource.number, resource.part)
    if resource.kind is ResourceKind.INIT:
        body = seg.init_segment(resource.number)
        content_type = TYPES["mp4"]
    else:
        body = seg.segment(resource.number, resource.extension)
        content_type = TYPES[resource.extension]
    if body is None:
        raise _not_found("segment")
    return _bytes_response(request, body, content_type)


def _admit(request: web.Request, packager: HlsPackager) -> bool:
    """One viewer = one client address and player (no cookies on HLS requests)."""
    remote = request.remote
    if request.app.get(TRUSTED_VIEWER):
        remote = request.headers.get(VIEWER_HEADER, remote)
    viewer = f"{remote}|{request.headers.get('User-Agent', '')}"
    return packager.viewers.admit(viewer, time.monotonic())


def _token_ok(request: web.Request, packager: HlsPackager, token: str) -> bool:
    key = request.app[HLS_SERVICE].playback_key
    return bool(key) and tokens.verify(key, packager.info.edge_id, token, time.time())


def mount(
    app: web.Application,
    service: HlsService,
    proxy: HlsProxy | None = None,
    *,
    internal: bool = False,
) -> None:
    """``proxy``: the public listener of a node among several; ``internal``: the listener
    other nodes proxy to (it trusts their ``Relaycast-Viewer`` header)."""
    app[HLS_SERVICE] = service
    app[TRUSTED_VIEWER] = internal
    if proxy is not None:
        app[HLS_PROXY] = proxy
    app.router.add_get("/live/{edgeId}/{name}", playback)
    app.router.add_get("/live/{edgeId}/{rendition}/{name}", playback)
