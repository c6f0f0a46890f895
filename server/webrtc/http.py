"""WHIP (RFC 9725) and WHEP over HTTP: ``/whip/live`` and ``/whep/{edgeId}``.

``POST`` an SDP offer → 201, the answer and the session's ``Location``; ``PATCH``
that URL with an ``application/trickle-ice-sdpfrag`` to trickle candidates (204;
an ICE restart gets 422, which RFC 9725 asks of a server that supports trickle but
not restarts); ``DELETE`` it to end the session. Errors are aiohttp HTTP exceptions
with a one-line reason; the app's error middleware turns them into problem JSON.

CORS is open, as for HLS: a page on any origin may publish or play. Nothing rides on
the browser's ambient credentials (the stream key or the playback token is in the
request itself), so an open origin grants a page nothing its own code does not hold.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from server.ingest.refusals import RefusalReason, Refused
from server.ingest.throttle import RefusalThrottle
from server.playback import PlayRefused
from server.webrtc.peer import BadOffer, PortsExhausted
from server.webrtc.service import (
    IceRestartUnsupported,
    Session,
    TooManySessions,
    UnknownSession,
    WebRtcService,
)
from server.webrtc.whep import WhepSession
from server.webrtc.whip import WhipSession

WEBRTC_SERVICE = web.AppKey("webrtc_service", WebRtcService)
WEBRTC_THROTTLE = web.AppKey("webrtc_throttle", RefusalThrottle)
SDP = "application/sdp"
SDPFRAG = "application/trickle-ice-sdpfrag"
_PATHS = ("/whip/", "/whep/")
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Location, Retry-After",
}
_PREFLIGHT = {
    **_CORS,
    "Access-Control-Allow-Methods": "POST, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
    "Access-Control-Max-Age": "600",
}

_PUBLISH_STATUS = {
    RefusalReason.UNKNOWN_KEY: web.HTTPUnauthorized,
    RefusalReason.STOPPED: web.HTTPForbidden,
    RefusalReason.IN_USE: web.HTTPConflict,
}
_PLAY_STATUS = {
    RefusalReason.NOT_LIVE: web.HTTPNotFound,
    RefusalReason.PLAYBACK_TOKEN: web.HTTPUnauthorized,
    RefusalReason.MAX_CLIENTS: web.HTTPTooManyRequests,
    RefusalReason.CODEC_UNSUPPORTED: web.HTTPUnprocessableEntity,
}


async def _body(request: web.Request, content_type: str) -> str:
    service = request.app[WEBRTC_SERVICE]
    if request.content_type != content_type:
        raise web.HTTPUnsupportedMediaType(text=f"send the body as {content_type}")
    limit = service.settings.max_offer_bytes
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    data = await _read(request, limit, service.settings.offer_timeout)
    if len(data) > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(data))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise web.HTTPBadRequest(text="the body is not UTF-8") from None


async def _read(request: web.Request, limit: int, seconds: float) -> bytes:
    """The body up to ``limit`` + 1 bytes (one more tells it is too large), however many
    pieces the network cuts it into, within ``seconds`` (else 408, connection closed)."""
    data = bytearray()
    try:
        async with asyncio.timeout(seconds):
            while len(data) <= limit:
                piece = await request.content.read(limit + 1 - len(data))
                if not piece:
                    break
                data += piece
    except TimeoutError:
        raise web.HTTPRequestTimeout(
            text=f"the body did not arrive within {seconds:g} s (webrtc.offer_timeout)",
            headers={"Connection": "close"},
        ) from None
    return bytes(data)


def _created(answer: str, location: str) -> web.Response:
    return web.Response(
        status=201,
        text=answer,
        content_type=SDP,
        headers={"Location": location, "Cache-Control": "no-store"},
    )


def _remote(request: web.Request) -> str:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return f"{peer[0]}:{peer[1]}" if peer else "?"


async def whip_publish(request: web.Request) -> web.Response:
    service = request.app[WEBRTC_SERVICE]
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise web.HTTPUnauthorized(text="send the stream key as Authorization: Bearer <key>")
    offer = await _body(request, SDP)
    try:
        session_id, answer = await service.publish(offer, key.strip(), _remote(request))
    except BadOffer as bad:
        raise web.HTTPBadRequest(text=str(bad)) from None
    except (TooManySessions, PortsExhausted) as full:
        raise web.HTTPServiceUnavailable(text=str(full)) from None
    except Refused as refused:
        if refused.reason is RefusalReason.UNKNOWN_KEY:
            await _slow_down(request)
        status = _PUBLISH_STATUS.get(refused.reason, web.HTTPForbidden)
        raise status(text=str(refused)) from None
    return _created(answer, f"/whip/live/{session_id}")


async def _slow_down(request: web.Request) -> None:
    """Answer a guessed key late, like RTMP does (the throttle is shared with it)."""
    throttle = request.app.get(WEBRTC_THROTTLE)
    if throttle is not None:
        loop = asyncio.get_running_loop()
        delay = throttle.refused(request.remote or "?", loop.time())
        if delay > 0:
            await asyncio.sleep(delay)


async def whep_play(request: web.Request) -> web.Response:
    service = request.app[WEBRTC_SERVICE]
    edge_id = request.match_info["edgeId"]
    offer = await _body(request, SDP)
    token = request.query.get("token", "")
    try:
        session_id, answer = await service.play(offer, edge_id, token, _remote(request))
    except BadOffer as bad:
        raise web.HTTPBadRequest(text=str(bad)) from None
    except (TooManySessions, PortsExhausted) as full:
        raise web.HTTPServiceUnavailable(text=str(full)) from None
    except PlayRefused as refused:
        status = _PLAY_STATUS.get(refused.reason, web.HTTPForbidden)
        raise status(text=str(refused)) from None
    return _created(answer, f"/whep/{edge_id}/{session_id}")


async def _patch(request: web.Request, kind: type[Session]) -> web.Response:
    service = request.app[WEBRTC_SERVICE]
    fragment = await _body(request, SDPFRAG)
    try:
        await service.trickle(request.match_info["sessionId"], kind, fragment)
    except UnknownSession:
        raise web.HTTPNotFound(text="no such WebRTC session") from None
    except IceRestartUnsupported as restart:
        raise web.HTTPUnprocessableEntity(text=str(restart)) from None
    except BadOffer as bad:
        raise web.HTTPBadRequest(text=str(bad)) from None
    return web.Response(status=204)


async def _delete(request: web.Request, kind: type[Session]) -> web.Response:
    try:
        await request.app[WEBRTC_SERVICE].end(request.match_info["sessionId"], kind)
    except UnknownSession:
        raise web.HTTPNotFound(text="no such WebRTC session") from None
    return web.Response(status=200)


async def preflight(request: web.Request) -> web.Response:
    return web.Response(status=204, headers=_PREFLIGHT)


async def _cors(request: web.Request, response: web.StreamResponse) -> None:
    """Every WHIP/WHEP answer, refusals included: a page must be able to read why."""
    if request.path.startswith(_PATHS):
        response.headers.update(_CORS)


async def whip_patch(request: web.Request) -> web.Response:
    return await _patch(request, WhipSession)


async def whip_delete(request: web.Request) -> web.Response:
    return await _delete(request, WhipSession)


async def whep_patch(request: web.Request) -> web.Response:
    return await _patch(request, WhepSession)


async def whep_delete(request: web.Request) -> web.Response:
    return await _delete(request, WhepSession)


def mount(
    app: web.Application, service: WebRtcService, throttle: RefusalThrottle | None = None
) -> None:
    app[WEBRTC_SERVICE] = service
    if throttle is not None:
        app[WEBRTC_THROTTLE] = throttle
    app.router.add_post("/whip/live", whip_publish)
    app.router.add_patch("/whip/live/{sessionId}", whip_patch)
    app.router.add_delete("/whip/live/{sessionId}", whip_delete)
    app.router.add_post("/whep/{edgeId}", whep_play)
    app.router.add_patch("/whep/{edgeId}/{sessionId}", whep_patch)
    app.router.add_delete("/whep/{edgeId}/{sessionId}", whep_delete)
    for path in (
        "/whip/live",
        "/whip/live/{sessionId}",
        "/whep/{edgeId}",
        "/whep/{edgeId}/{sessionId}",
    ):
        app.router.add_route("OPTIONS", path, preflight)
    app.on_response_prepare.append(_cors)
