"""Playback of library files over HTTP: ``/vod/{mediaId}/…`` (HLS VOD and the MP4).

Errors are raised as aiohttp HTTP exceptions with a one-line explanation; the app's
error middleware turns them into problem JSON like every other error. The MP4 is sent
with ``FileResponse`` (sendfile, Range, 416): it holds the file open, so a file deleted
while it is being sent still ends that response whole.
"""

from __future__ import annotations

import asyncio
import time
from typing import cast

from aiohttp import web

from server.hls import tokens
from server.hls.http import PLAYLIST, TYPES
from server.hls.names import Resource, ResourceKind, parse_name
from server.hls.playlist import with_suffix

from . import sendfile
from .sendfile import SegmentFile, zero_copy_socket
from .service import VodItem, VodService
from .source import UnreadableFile, UnsupportedCodec

MP4_NAME = "file.mp4"
VOD_SERVICE = web.AppKey("vod_service", VodService)
_PUBLIC = "public, max-age=31536000, immutable"
_PRIVATE = "private, max-age=3600"


def _headers(cache: str) -> dict[str, str]:
    return {"Cache-Control": cache, "Access-Control-Allow-Origin": "*"}


async def _item(request: web.Request, service: VodService) -> VodItem:
    media_id = request.match_info["mediaId"]
    item = await service.item(media_id)
    if item is None:
        raise web.HTTPNotFound(text=f"media item {media_id} not found")
    if item.status != "ready":
        raise web.HTTPConflict(text=f"media item {media_id} is {item.status}, not ready")
    if item.private and not _token_ok(service, item, request.query.get("token", "")):
        raise web.HTTPUnauthorized(
            text="this media item is private: add a valid ?token=", headers=_headers("no-cache")
        )
    return item


def _token_ok(service: VodService, item: VodItem, token: str) -> bool:
    key = service.playback_key
    return bool(key) and tokens.verify(key, item.media_id, token, time.time())


async def vod(request: web.Request) -> web.StreamResponse:
    """Counted by resource kind and status (``relaycast_vod_requests_total``): VOD is
    playback, kept out of the API's per-route request metrics."""
    service = request.app[VOD_SERVICE]
    name = request.match_info["name"]
    resource = parse_name(name)
    kind = "mp4" if name == MP4_NAME else resource.kind.value if resource else "other"
    try:
        response = await _serve(request, service, name, resource)
    except web.HTTPException as exc:
        service.requests[(kind, exc.status)] += 1
        raise
    service.requests[(kind, response.status)] += 1
    return response


async def _serve(
    request: web.Request, service: VodService, name: str, resource: Resource | None
) -> web.StreamResponse:
    item = await _item(request, service)
    cache = _PRIVATE if item.private else _PUBLIC
    if name == MP4_NAME:
        if item.mp4 is None:
            raise web.HTTPNotFound(
                text="this media item has no MP4 (its codecs need another container)"
            )
        return web.FileResponse(item.mp4, headers={**_headers(cache), "Content-Type": "video/mp4"})
    if resource is None or resource.kind is ResourceKind.PART or resource.extension == "ts":
        raise web.HTTPNotFound(text=f"{name} is not a VOD resource")
    try:
        playlists = await service.playlists(item)
        if resource.kind in (ResourceKind.MASTER, ResourceKind.MEDIA):
            token = request.query.get("token", "") if item.private else ""
            pieces = playlists.master if resource.kind is ResourceKind.MASTER else playlists.media
            text = with_suffix(pieces, f"?token={token}" if token else "")
            return web.Response(
                body=text.encode(), content_type=PLAYLIST, headers=_headers("no-cache")
            )
        if resource.kind is ResourceKind.INIT and resource.number == 0:
            return web.Response(
                body=playlists.init, content_type=TYPES["mp4"], headers=_headers(cache)
            )
        if resource.kind is ResourceKind.SEGMENT and resource.number < len(playlists.layout.spans):
            file = await service.segment(item, playlists, resource.number)
            stall = service.settings.send_stall_timeout
            return await _send(request, file, stall, _headers(cache))
    except UnsupportedCodec as exc:
        raise web.HTTPUnsupportedMediaType(text=f"{exc} (codec: {exc.codec})") from None
    except UnreadableFile as exc:
        raise web.HTTPNotFound(text=f"media item {item.media_id} cannot be read: {exc}") from None
    raise web.HTTPNotFound(text=f"{name} not found")


async def _send(
    request: web.Request, file: SegmentFile, stall: float, headers: dict[str, str]
) -> web.StreamResponse:
    """A cached segment: headers through aiohttp, the body by sendfile from its memory
    file, so no viewer costs a copy of it (where the connection allows; TLS does not)."""
    headers = {**headers, "Content-Type": TYPES["m4s"]}
    if request.method == "HEAD":
        return web.Response(body=file.read(), headers=headers)
    response = web.StreamResponse(headers=headers)
    response.content_length = file.size
    transport = request.transport
    sock = zero_copy_socket(transport) if transport is not None else None
    if transport is None or sock is None:
        await response.prepare(request)
        await response.write(file.read())
    else:
        with sendfile.corked(sock):
            await response.prepare(request)
            sent = await sendfile.send(cast(asyncio.WriteTransport, transport), sock, file, stall)
        if not sent:
            return response  # the viewer went away: aiohttp ends the connection
    await response.write_eof()
    return response


def mount(app: web.Application, service: VodService) -> None:
    app[VOD_SERVICE] = service
    app.router.add_get(r"/vod/{mediaId:med_[0-9a-f]{1,32}}/{name}", vod)
