"""``relaycast serve``: the composition root that wires store, media plane and HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from control_api.app import build_app
from control_api.appkeys import LIBRARY, NODE, PLAYBACK, PLAYOUT, RECORDER, TRANSCODE, WEBHOOKS
from control_api.bootstrap import banner, bootstrap
from control_api.checkpoints import SessionCheckpointer
from control_api.fdlimit import apply as apply_open_file_limit
from control_api.http_guard import ConnectionGuard, GuardedSite
from control_api.logs import formatter
from control_api.media import MediaPlane, recordings_root
from control_api.media_library.library import MediaLibrary
from control_api.metrics import METRICS, MediaSources, metrics_app
from control_api.node_playback import NodePlayback, open_node_playback
from control_api.nodes import ThisNode
from control_api.problems import problem_body
from control_api.refusals import RefusalRecorder
from control_api.settings import Settings
from control_api.store import Store
from control_api.store.directory import StoreDirectory
from control_api.urls import Endpoints
from control_api.viewers import SessionViewers
from server import accel
from server.hls import http as hls_http
from server.hls.fast import FastHls
from server.hls.player import mount_player
from server.vod.http import VOD_SERVICE
from server.vod.player import mount_vod_player
from server.webrtc import http as webrtc_http

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


def configure_logging(level: str, fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    logging.basicConfig(level=level.upper(), handlers=[handler])
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


async def open_store(settings: Settings) -> Store:
    settings.server.data_dir.mkdir(parents=True, exist_ok=True)
    store = await Store.open(settings.database_url, echo=settings.database.echo)
    secret = await bootstrap(store)
    if secret is not None:
        print(banner(secret), flush=True)
        log.warning("printed the bootstrap admin API key on standard output (shown only once)")
    return store


async def _reconcile(store: Store, node: str) -> None:
    """After the webhook dispatcher listens (it announces the ended streams) and
    before any encoder can connect."""
    sessions, streams = await store.reconcile_after_restart(node)
    if sessions or streams:
        log.warning("closed %d stale session(s), ended %d stream(s) left live", sessions, streams)


async def _recordings_left_behind(
    settings: Settings, media: MediaPlane, library: MediaLibrary, node: ThisNode
) -> None:
    """Finish this node's previous run's recordings; a named node on a shared database
    holds its folder as a job (``recordings:<node>``) and finishes dead nodes' folders
    too. The library's imports and probes a dead node left are taken over likewise."""
    root = recordings_root(settings)
    if settings.node.name and library.jobs.shared:
        recovered = await media.recordings.recover_own(library.jobs, root, node.name)
        node.upkeep.append(lambda: media.recordings.take_over(library.jobs, root.parent))
    else:
        recovered = await media.recordings.recover(root)
    if recovered:
        log.warning("finished %d recording(s) a previous process left behind", recovered)
    node.upkeep.append(library.take_over)


async def _metrics_listener(settings: Settings, app: web.Application) -> web.AppRunner | None:
    """``metrics.port`` set: /metrics gets its own listener (and is not on the API port)."""
    config = settings.metrics
    if not config.enabled or config.port is None:
        return None
    runner = web.AppRunner(
        metrics_app(app[METRICS], config),
        access_log=None,
        keepalive_timeout=settings.http.header_timeout,
    )
    await runner.setup()
    reuse = settings.server.reuse_port
    await GuardedSite(runner, config.host, config.port, _guard(settings), reuse).start()
    log.info("listening metrics http://%s:%d/metrics", config.host, _bound_port(runner))
    return runner


def _guard(settings: Settings) -> ConnectionGuard:
    return ConnectionGuard(settings.http.header_timeout, settings.http.max_connections_per_address)


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def run(settings: Settings) -> None:
    apply_open_file_limit(settings.rtmp.max_connections + settings.http.max_connections_per_address)
    log.info("media hot path: %s", accel.describe())
    store = await open_store(settings)
    endpoints = _endpoints(settings)
    recorder = RefusalRecorder(store.ingest_failures, settings.diagnostics.ingest_failures_kept)
    node = ThisNode(settings, store, endpoints)
    media = MediaPlane.build(
        settings, store, await store.playback_signing_key(), (recorder,), node.claims
    )
    app = build_app(
        settings, store, endpoints, await store.token_signing_key(), media.ingest, media.push
    )
    app[RECORDER] = media.record
    app[TRANSCODE] = media.transcode
    media.push.renditions = media.transcode.rendition_stream
    app[PLAYBACK] = media.playback
    app[PLAYOUT] = media.playout
    app[NODE] = node
    media.playback.sink = SessionViewers(store)
    await _reconcile(store, node.name)
    await _recordings_left_behind(settings, media, app[LIBRARY], node)
    media.recordings.submit = app[LIBRARY].processor.submit  # later ones are probed at once
    remote: NodePlayback | None = None
    if store.shared:
        remote = await open_node_playback(
            settings, node, media.hls, _guard(settings), media.playback, app
        )
    hls_http.mount(app, media.hls, remote.proxy if remote is not None else None)
    mount_player(app)
    mount_vod_player(app)
    if settings.webrtc.enabled:
        webrtc_http.mount(app, media.webrtc, media.rtmp.throttle)
    sources = MediaSources(
        media.ingest,
        media.registry,
        media.hls,
        media.rtmp,
        media.srt,
        media.push,
        playback=media.playback,
        webrtc=media.webrtc if settings.webrtc.enabled else None,
        record=media.record,
        vod=app[VOD_SERVICE],
        webhook_results=app[WEBHOOKS].counters.copy,
        transcode=media.transcode,
        playout=media.playout,
    )
    app[METRICS].attach(sources, store)
    recorder.start()
    directory = media.ingest.directory
    checkpoints = SessionCheckpointer(
        store,
        media.ingest,
        settings.diagnostics.session_checkpoint_seconds,
        directory.adopted if isinstance(directory, StoreDirectory) else None,
    )
    checkpoints.start()
    # aiohttp's keep-alive timer closes a connection still waiting for its next
    # request head this long after a response: the header timeout after the first
    # request (the guard bounds the first).
    runner = web.AppRunner(
        app,
        handle_signals=False,
        shutdown_timeout=2.0,
        access_log=None,
        keepalive_timeout=settings.http.header_timeout,
    )
    await runner.setup()
    scrape = await _metrics_listener(settings, app)
    try:
        await media.start(settings, endpoints)
        resumed = await media.playout.resume()
        if resumed:
            log.warning("resumed %d channel(s) that were playing", resumed)
        host, port = settings.server.host, settings.server.http_port
        reuse = settings.server.reuse_port
        fast = FastHls(media.hls, settings.http.header_timeout, problem_body)
        await GuardedSite(runner, host, port, _guard(settings), reuse, fast.factory).start()
        endpoints.http_port = _bound_port(runner)
        await node.start(media.ingest)
        log.info(
            "listening http http://%s:%d (public URL %s, docs %s/docs)",
            settings.server.host,
            endpoints.http_port,
            endpoints.http_base,
            endpoints.http_base,
        )
        # Everything allocated so far (modules, app, settings) lives for the whole
        # process: keep the collector from re-scanning it in every full collection
        # while media flows.
        gc.freeze()
        stop = _stop_event()
        await stop.wait()
        log.info("stopping")
    finally:
        budget = settings.server.shutdown_timeout - 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(media.stop(), budget / 2)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(runner.cleanup(), budget / 2)
        if scrape is not None:
            await scrape.cleanup()
        if remote is not None:
            await remote.close()
        await checkpoints.stop()
        await node.stop()
        await recorder.stop()
        await store.close()
    log.info("stopped")


def serve(settings: Settings) -> None:
    configure_logging(settings.server.log_level, settings.server.log_format)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(run(settings))
    else:
        uvloop.run(run(settings))
