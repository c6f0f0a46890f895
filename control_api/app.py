"""The aiohttp application factory for the control API."""

from __future__ import annotations

import json

from aiohttp import web

from control_api.appkeys import (
    ENDPOINTS,
    INGEST,
    LAST_USED,
    LIBRARY,
    LIMITER,
    METRICS,
    OPENAPI,
    ORIGINS,
    PUSH,
    SETTINGS,
    SIGNING_KEY,
    STORE,
    WEBHOOKS,
)
from control_api.cors import OriginCache
from control_api.docs import mount_docs
from control_api.jobs import Jobs
from control_api.last_used import LastUsed
from control_api.media_library.library import MediaLibrary
from control_api.media_library.vod import LibraryCatalog, vod_lifecycle
from control_api.metrics import Metrics, metrics_middleware
from control_api.metrics import mount as mount_metrics
from control_api.middlewares import access_middleware, cors_middleware, error_middleware
from control_api.openapi import build_openapi
from control_api.ratelimit import RateLimiter
from control_api.routes import api
from control_api.routes import mount as mount_routes
from control_api.settings import Settings
from control_api.store import Store
from control_api.studio import mount_studio
from control_api.urls import Endpoints
from control_api.version import version
from control_api.webhooks.dispatcher import Dispatcher
from control_api.webhooks.lanes import SharedLanes
from control_api.webhooks.resources import renderer
from control_api.webhooks.sources import DestinationErrors
from server import accel
from server.ingest.manager import IngestManager
from server.push.manager import PushManager
from server.transcode.ladder import SOURCE, rung_names
from server.vod import http as vod_http
from server.vod.service import VodService


async def healthz(request: web.Request) -> web.Response:
    """``node``: behind a load balancer or with ``--workers``, which process answered;
    ``mediaPath``: whether its media hot path runs compiled, pure Python or mixed."""
    node = request.app[SETTINGS].node.resolved_name()
    body = {"status": "ok", "version": version(), "node": node, "mediaPath": accel.summary()}
    return web.json_response(body)


async def openapi_json(request: web.Request) -> web.Response:
    """No ``servers`` entry: the default "/" makes try-it call whichever host served /docs."""
    cache = request.app[OPENAPI]
    if "doc" not in cache:
        settings = request.app[SETTINGS]
        doc = build_openapi(api.operations, version(), None)
        create = doc["components"]["schemas"]["StreamCreate"]["properties"]
        create["plan"]["enum"] = sorted(settings.plans)
        create["region"]["enum"] = list(settings.regions)
        renditions = sorted(rung_names(settings.transcode.ladders) | {SOURCE})
        for model in ("DestinationCreate", "DestinationPatch"):
            doc["components"]["schemas"][model]["properties"]["rendition"]["enum"] = renditions
        cache["doc"] = json.dumps(doc)
    return web.Response(text=cache["doc"], content_type="application/json")


def build_app(
    settings: Settings,
    store: Store,
    endpoints: Endpoints,
    signing_key: bytes,
    ingest: IngestManager,
    push: PushManager | None = None,
) -> web.Application:
    """``push`` is the media plane's; without one (API-only tests) destinations are
    stored and shown as idle, and nothing is pushed."""
    app = web.Application(
        client_max_size=settings.api.max_body_bytes,
        middlewares=[metrics_middleware, cors_middleware, access_middleware, error_middleware],
    )
    app[SETTINGS] = settings
    app[PUSH] = push or PushManager(store.destinations, settings.push)
    app[STORE] = store
    app[ENDPOINTS] = endpoints
    app[SIGNING_KEY] = signing_key
    app[INGEST] = ingest
    app[LIMITER] = RateLimiter(settings.api.rate_limit_per_minute)
    app[LAST_USED] = LastUsed()
    app[ORIGINS] = OriginCache.for_store(store)
    app[OPENAPI] = {}
    app[METRICS] = Metrics()
    app[METRICS].identify(settings.node.resolved_name(), settings.node_region)
    if settings.metrics.enabled and settings.metrics.port is None:
        mount_metrics(app, app[METRICS], settings.metrics)
    # before the library: started first, stopped last, so its last events are kept
    render = renderer(endpoints, app[PUSH])
    webhooks = Dispatcher(
        store.webhooks, store.events, settings.webhooks, render, lambda: endpoints.http_port
    )
    if store.shared:
        cap = settings.webhooks.concurrency_per_webhook
        webhooks.shared_lanes = SharedLanes(Jobs.of(settings, store), cap)
    app[PUSH].listeners.append(DestinationErrors(store))
    app[WEBHOOKS] = webhooks
    app.cleanup_ctx.append(webhooks.lifecycle)
    library = MediaLibrary(settings, store, endpoints)
    app[LIBRARY] = library
    app.cleanup_ctx.append(library.lifecycle)
    vod = VodService(
        settings.vod, settings.hls.target_duration, LibraryCatalog(store, library.files)
    )
    app.cleanup_ctx.append(vod_lifecycle(vod, store))
    vod_http.mount(app, vod)
    mount_routes(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/v1/openapi.json", openapi_json)
    mount_docs(app)
    mount_studio(app)
    return app
