"""``GET /metrics``: Prometheus text format over the same live state the API shows.

Two kinds of numbers. What only the request path sees (API requests, latency, API
and playback auth failures) is counted here with prometheus-client objects, in a
registry per app. Everything else is read from live snapshots at scrape time by
:class:`~control_api.metrics_snapshot.SnapshotCollector`. Label sets are bounded:
route templates (never raw paths), a fixed set of methods, status codes.
"""

from __future__ import annotations

import hmac
import time
from collections import Counter
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as PromCounter
from prometheus_client.exposition import generate_latest
from sqlalchemy import func, select

from control_api.appkeys import METRICS
from control_api.metrics_snapshot import MediaSources, SnapshotCollector
from control_api.settings import MetricsSettings
from control_api.store import Store
from control_api.store.models import LiveStream

__all__ = ["METRICS", "MediaSources", "Metrics", "metrics_app", "metrics_middleware", "mount"]
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PLAYBACK_PREFIXES = {"/live/": "hls", "/vod/": "vod"}
UNMATCHED = "unmatched"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The classic text format: every Prometheus (2.x and 3.x) and agent parses it."""


class ApiMetrics:
    """Request-path counters of the HTTP API, in the app's own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = PromCounter(
            "relaycast_api_requests",
            "HTTP API requests by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "relaycast_api_request_duration_seconds",
            "HTTP API request latency by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.auth_failures: Counter[tuple[str, str]] = Counter()

    def observe(self, request: web.Request, status: int, seconds: float) -> None:
        route = _route(request)
        method = request.method if request.method in METHODS else "other"
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
        if status == 401:
            reason = "missing-credentials"
            if request.headers.get("Authorization"):
                reason = "invalid-credentials"
            self.auth_failures[("http", reason)] += 1
        elif status == 403:
            self.auth_failures[("http", "forbidden")] += 1


def _route(request: web.Request) -> str:
    """The route template (``/v1/live-streams/{streamId}``), never the raw path."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


class Metrics:
    """One registry per app: the API's request counters plus the snapshot collector."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.api = ApiMetrics(self.registry)
        self.collector: SnapshotCollector | None = None
        self.store: Store | None = None

    def attach(self, sources: MediaSources, store: Store) -> None:
        """Start exporting the media plane's families (once; the composition root calls it)."""
        if self.collector is not None:
            raise RuntimeError("media sources already attached")
        self.collector = SnapshotCollector(sources, self.api.auth_failures)
        self.registry.register(self.collector)
        self.store = store

    def identify(self, node: str, region: str) -> None:
        """``relaycast_node_info{node,region} 1``: with several nodes behind one scrape
        target (``--workers``), which process answered; join on it per node."""
        info = Gauge(
            "relaycast_node_info",
            "The node (process) that served this scrape, and its region.",
            ["node", "region"],
            registry=self.registry,
        )
        info.labels(node, region).set(1)

    async def render(self) -> bytes:
        if self.collector is not None and self.store is not None:
            self.collector.states = await stream_states(self.store)
        return generate_latest(self.registry)


HandlerT = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def stream_states(store: Store) -> dict[str, int]:
    """Streams per state, all environments: the same column the API returns."""
    async with store.sessions() as s:
        rows = await s.execute(select(LiveStream.state, func.count()).group_by(LiveStream.state))
        return {str(state): int(count) for state, count in rows.all()}


@web.middleware
async def metrics_middleware(request: web.Request, handler: HandlerT) -> web.StreamResponse:
    """Outermost: time every API request and count it under its route template.

    Playback is not API: live HLS has its own counters (``relaycast_hls_*``), VOD
    (``/vod/``) is hundreds of segment requests a second where a labelled histogram
    per request was a third of the server's own time per segment. A 401 there is a bad
    playback token and counts as an ``hls`` or ``vod`` auth failure.
    """
    metrics = request.app[METRICS]
    playback = PLAYBACK_PREFIXES.get(request.path[: request.path.find("/", 1) + 1])
    if playback is not None:
        response = await handler(request)
        if response.status == 401:
            metrics.api.auth_failures[(playback, "invalid-token")] += 1
        return response
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        metrics.api.observe(request, status, time.perf_counter() - started)


def _authorized(request: web.Request, token: str | None) -> bool:
    if token is None:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def metrics_handler(metrics: Metrics, settings: MetricsSettings) -> HandlerT:
    async def scrape(request: web.Request) -> web.StreamResponse:
        if not _authorized(request, settings.token):
            return web.Response(
                status=401,
                text="send Authorization: Bearer <metrics token>\n",
                headers={"WWW-Authenticate": 'Bearer realm="relaycast-metrics"'},
            )
        body = await metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    return scrape


def mount(app: web.Application, metrics: Metrics, settings: MetricsSettings) -> None:
    """Serve ``GET /metrics`` from ``app`` (the API's, or a separate metrics-only app)."""
    app.router.add_get("/metrics", metrics_handler(metrics, settings))


def metrics_app(metrics: Metrics, settings: MetricsSettings) -> web.Application:
    """The separate listener's app (``metrics.port``): only ``/metrics``."""
    app = web.Application()
    mount(app, metrics, settings)
    return app
