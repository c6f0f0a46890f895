"""Playback on any node: the listener other nodes proxy HLS (and relay the streams of
RTMP, SRT and WHEP players, ``server.playback.relay``) from, and the proxy and relays.

On a shared database every node opens a second, playback-only HTTP listener
(``node.internal_host``/``internal_port``) and announces its URL in the node registry;
its public listener fetches the HLS of streams other nodes carry from theirs (see
``server.hls.proxy`` for why a proxy and not a redirect). The internal listener has no
proxy of its own, so a request crosses at most one hop, and it serves no API: only
the health and viewer figures of the streams whose encoders this node holds
(read-only), which the API of the other nodes shows for them.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from control_api.appkeys import INGEST, PLAYBACK
from control_api.http_guard import ConnectionGuard, GuardedSite
from control_api.nodes import ThisNode
from control_api.presenters.sessions import viewership_out
from control_api.routes.live_streams import local_health
from control_api.settings import Settings
from server.hls import http as hls_http
from server.hls.packager import HlsService
from server.hls.proxy import HlsProxy, ProxyLimits
from server.playback import PlaybackService, relay


@dataclass(slots=True)
class NodePlayback:
    runner: web.AppRunner
    proxy: HlsProxy

    async def close(self) -> None:
        await self.proxy.close()
        await self.runner.cleanup()


def _limits(settings: Settings) -> ProxyLimits:
    node = settings.node
    return ProxyLimits(
        timeout=node.proxy_timeout,
        connect_timeout=node.proxy_connect_timeout,
        max_body_bytes=node.proxy_max_body_bytes,
        max_connections=node.proxy_max_connections,
        lookup_seconds=node.proxy_lookup_seconds,
    )


def _url(settings: Settings, port: int) -> str:
    """On a wildcard address, other machines reach the node by its advertised host."""
    host = settings.node.internal_host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104
        host = settings.server.advertised_host()
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _relay_limits(settings: Settings) -> relay.RelayLimits:
    node = settings.node
    return relay.RelayLimits(
        timeout=node.proxy_timeout,
        connect_timeout=node.proxy_connect_timeout,
        max_record_bytes=node.proxy_max_body_bytes,
        max_connections=node.proxy_max_connections,
    )


def _mount_owner_figures(internal: web.Application, app: web.Application) -> None:
    """``GET /health/{streamId}``, ``GET /viewership/{streamId}``: this node's figures
    of a stream whose encoder (or latest session) it holds, for the API of the others
    (404 when it holds none)."""

    def held(request: web.Request) -> str:
        stream_id = request.match_info["streamId"]
        if app[INGEST].health(stream_id) is None:
            raise web.HTTPNotFound(text="no encoder of that stream on this node\n")
        return stream_id

    async def health(request: web.Request) -> web.Response:
        doc = local_health(app, held(request), "live")
        fields = doc.model_dump(mode="json", by_alias=True, exclude={"stream_id", "state"})
        return web.json_response(fields)

    async def viewership(request: web.Request) -> web.Response:
        """Of the latest session here, ended or not: asked of the node of a stream's
        latest session (``owner_url``), it is the one with the figures."""
        playback = app.get(PLAYBACK)
        stats = playback.viewership(request.match_info["streamId"]) if playback else None
        if stats is None:
            raise web.HTTPNotFound(text="no session of that stream on this node\n")
        return web.json_response(viewership_out(stats).model_dump(mode="json", by_alias=True))

    internal.router.add_get("/health/{streamId}", health)
    internal.router.add_get("/viewership/{streamId}", viewership)


async def open_node_playback(
    settings: Settings,
    node: ThisNode,
    hls: HlsService,
    guard: ConnectionGuard,
    playback: PlaybackService,
    app: web.Application,
) -> NodePlayback:
    """Bind the internal listener (before the node's first heartbeat announces it);
    RTMP and SRT players of streams other nodes carry are relayed from theirs, and
    the API of the others asks it for the health of the streams this node carries."""
    internal = web.Application()
    hls_http.mount(internal, hls, internal=True)
    relay.mount_source(internal, playback)
    _mount_owner_figures(internal, app)
    runner = web.AppRunner(
        internal, access_log=None, keepalive_timeout=settings.http.header_timeout
    )
    await runner.setup()
    host, port = settings.node.internal_host, settings.node.internal_port
    await GuardedSite(runner, host, port, guard, False).start()
    bound = next(a[1] for a in runner.addresses if isinstance(a, tuple))
    node.internal_url = settings.node.internal_url or _url(settings, bound)
    proxy = HlsProxy(node, _limits(settings))
    playback.relays = relay.PlayerRelays(proxy.owner, playback, _relay_limits(settings))
    return NodePlayback(runner, proxy)
