"""``relaycast serve``: the composition root that wires store, media plane and HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from control_api.app import build_app
from control_api.bootstrap import banner, bootstrap
from control_api.media import MediaPlane
from control_api.settings import Settings
from control_api.store import Store
from control_api.urls import Endpoints
from server.hls import http as hls_http
from server.hls.player import mount_player

log = logging.getLogger("relaycast")


class _OneLineBadRequests(logging.Filter):
    """aiohttp logs a full traceback for every malformed request; one line says enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg = "rejected malformed HTTP request: %s"
            record.args = (str(exc).splitlines()[0][:200],)
            record.exc_info = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.server").addFilter(_OneLineBadRequests())


def _endpoints(settings: Settings) -> Endpoints:
    return Endpoints(
        public_host=settings.server.advertised_host(),
        http_port=settings.server.http_port,
        rtmp_port=settings.rtmp.port,
        srt_port=settings.srt.port,
        rtmp_app=settings.rtmp.app,
        rtmps_port=settings.rtmps.port if settings.rtmps.enabled else None,
    )


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return int(address[1])
    raise RuntimeError("HTTP listener has no TCP address")


async def _open_store(settings: Settings) -> Store:
    settings.server.data_dir.mkdir(parents=True, exist_ok=True)
    store = await Store.open(settings.database_url, echo=settings.database.echo)
    secret = await bootstrap(store)
    if secret is not None:
        print(banner(secret), flush=True)
    sessions, streams = await store.reconcile_after_restart()
    if sessions or streams:
        log.warning("closed %d stale session(s), ended %d stream(s) left live", sessions, streams)
    return store


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def run(settings: Settings) -> None:
    store = await _open_store(settings)
    endpoints = _endpoints(settings)
    media = MediaPlane.build(settings, store)
    media.hls.playback_key = await store.playback_signing_key()
    app = build_app(settings, store, endpoints, await store.token_signing_key(), media.ingest)
    hls_http.mount(app, media.hls)
    mount_player(app)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0, access_log=None)
    await runner.setup()
    try:
        await media.start(settings, endpoints)
        await web.TCPSite(runner, settings.server.host, settings.server.http_port).start()
        endpoints.http_port = _bound_port(runner)
        log.info(
            "listening http http://%s:%d (public URL %s, docs %s/docs)",
            settings.server.host,
            endpoints.http_port,
            endpoints.http_base,
            endpoints.http_base,
        )
        stop = _stop_event()
        await stop.wait()
        log.info("stopping")
    finally:
        budget = settings.server.shutdown_timeout - 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(media.stop(), budget / 2)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(runner.cleanup(), budget / 2)
        await store.close()
    log.info("stopped")


def serve(settings: Settings) -> None:
    configure_logging(settings.server.log_level)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(run(settings))
    else:
        uvloop.run(run(settings))
