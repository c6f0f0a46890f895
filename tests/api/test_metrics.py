"""``GET /metrics``: families, values equal to the API's, bounded labels, access control.

The media plane is real (ingest manager, bus, HLS service, RTMP server object) but fed
in-process, so the numbers are exact; tests/interop/test_metrics_publish.py does the
same with ffmpeg on the wire.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from control_api.app import build_app
from control_api.bootstrap import bootstrap
from control_api.metrics import METRICS, MediaSources, Metrics
from control_api.settings import SettingsError, load_settings
from control_api.store import Store
from control_api.store.directory import StoreDirectory
from control_api.store.models import Media
from control_api.urls import Endpoints
from server.bus import Registry, Stream, StreamGrant
from server.hls import http as hls_http
from server.hls.packager import HlsService, PlaybackInfo
from server.ingest.manager import Claim, IngestManager
from server.ingest.refusals import RefusalReason
from server.ingest.rtmp import RtmpIngestServer
from server.media.frame import TIMEBASE, CodecConfig, Frame, TrackKind
from server.protocols import rtmp
from server.push.status import DestinationStatus, PushState
from server.record.service import RecordService
from server.settings import RecordSettings
from server.vod.http import VOD_SERVICE
from tests.unit.ingest.test_rtmp_ingest import publish as rtmp_publish
from tests.unit.media.avsource import media
from tests.unit.record.test_recorder import Catalog as RecCatalog
from tests.unit.record.test_recorder import publish as rec_publish

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass
class Publisher:
    protocol: str = "rtmp"
    remote: str = "127.0.0.1:40000"
    closed: str | None = None

    def close(self, reason: str) -> None:
        self.closed = reason


@dataclass
class Plane:
    base: str
    http: aiohttp.ClientSession
    admin: str
    store: Store
    ingest: IngestManager
    hls: HlsService
    metrics: Metrics
    rtmp: RtmpIngestServer

    async def get(self, path: str, key: str | None = None, **headers: str) -> tuple[int, str]:
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        async with self.http.get(self.base + path, headers=headers) as resp:
            return resp.status, await resp.text()

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.admin}"}
        async with self.http.post(self.base + path, json=body, headers=headers) as resp:
            assert resp.status == 201, await resp.text()
            doc: dict[str, Any] = await resp.json()
            return doc

    async def scrape(self, key: str | None = None) -> Samples:
        status, text = await self.get("/metrics", key)
        assert status == 200, text
        return parse(text)


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


PlaneFactory = Callable[..., Awaitable[Plane]]


@pytest.fixture
async def make_plane(tmp_path: Path) -> AsyncIterator[PlaneFactory]:
    cleanups: list[Callable[[], Awaitable[None]]] = []

    async def start(**overrides: Any) -> Plane:
        server = {"data_dir": str(tmp_path), "host": "127.0.0.1", "public_host": "127.0.0.1"}
        settings = load_settings(
            environ={},
            overrides={"server": server, "api": {"rate_limit_per_minute": 100_000}, **overrides},
        )
        store = await Store.open(settings.database_url)
        secret = await bootstrap(store)
        assert secret is not None
        endpoints = Endpoints("127.0.0.1", 0, 1935, 9000, settings.rtmp.app)
        registry = Registry()
        ingest = IngestManager(StoreDirectory(store.sessions), registry, settings.ingest)
        hls = HlsService(settings.hls)
        app = build_app(settings, store, endpoints, await store.token_signing_key(), ingest)
        hls_http.mount(app, hls)
        rtmp = RtmpIngestServer(ingest, settings.rtmp)
        app[METRICS].attach(MediaSources(ingest, registry, hls, rtmp, vod=app[VOD_SERVICE]), store)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        http = aiohttp.ClientSession()

        async def stop() -> None:
            await http.close()
            await ingest.shutdown()
            await runner.cleanup()
            await store.close()

        cleanups.append(stop)
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        return Plane(base, http, secret, store, ingest, hls, app[METRICS], rtmp)

    yield start
    for stop in cleanups:
        await stop()


@pytest.fixture
async def plane(make_plane: PlaneFactory) -> Plane:
    return await make_plane()


VIDEO = CodecConfig(TrackKind.VIDEO, "h264", b"\x01", width=640, height=360)


def _video(index: int, fps: int = 25, gop: int = 25) -> Frame:
    dts = index * TIMEBASE // fps
    return Frame(TrackKind.VIDEO, "h264", dts, dts, index % gop == 0, b"\x00\x00\x00\x01\x65")


async def _publish(plane: Plane, frames: int) -> tuple[str, Claim]:
    stream = await plane.post("/v1/live-streams", {"name": "m"})
    claim = await plane.ingest.claim(stream["ingest"]["streamKey"], Publisher(), "live/abcd****")
    claim.config(VIDEO)
    now = time.monotonic()
    for i in range(frames):
        claim.received(1000, now)
        claim.frame(_video(i))
    return str(stream["streamId"]), claim


async def test_families_have_help_types_and_the_text_content_type(plane: Plane) -> None:
    async with plane.http.get(plane.base + "/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = await resp.text()
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    expected = {
        "relaycast_streams": "gauge",
        "relaycast_ingest_publishers": "gauge",
        "relaycast_ingest_connections": "gauge",
        "relaycast_ingest_bytes": "counter",
        "relaycast_ingest_frames": "counter",
        "relaycast_ingest_bitrate_bits_per_second": "gauge",
        "relaycast_ingest_video_frames_per_second": "gauge",
        "relaycast_ingest_keyframe_interval_seconds": "gauge",
        "relaycast_bus_frames_dropped": "counter",
        "relaycast_hls_requests": "counter",
        "relaycast_hls_blocking_reload_wait_seconds": "histogram",
        "relaycast_hls_viewers": "gauge",
        "relaycast_auth_failures": "counter",
        "relaycast_api_requests": "counter",
        "relaycast_api_request_duration_seconds": "histogram",
        "relaycast_rtmp_connections_accepted": "counter",
    }
    for name, kind in expected.items():
        assert families.get(name) == kind, (name, families.get(name))
    assert "# HELP relaycast_streams " in text


async def test_stream_states_equal_the_api(plane: Plane) -> None:
    for _ in range(3):
        await plane.post("/v1/live-streams", {"name": "idle one"})
    sid, _claim = await _publish(plane, 10)
    await _settle()
    samples = await plane.scrape()
    status, body = await plane.get(f"/v1/live-streams/{sid}", plane.admin)
    assert status == 200 and '"state":"live"' in body
    assert value(samples, "relaycast_streams", state="idle") == 3
    assert value(samples, "relaycast_streams", state="live") == 1
    assert value(samples, "relaycast_streams", state="error") == 0


async def _settle() -> None:
    """Session rows are written by ingest's background tasks: let them commit."""
    for _ in range(50):
        await asyncio.sleep(0.01)


async def test_ingest_series_equal_stream_health_and_move(plane: Plane) -> None:
    sid, claim = await _publish(plane, 51)
    await _settle()
    first = await plane.scrape()
    status, text = await plane.get(f"/v1/live-streams/{sid}/health", plane.admin)
    assert status == 200
    health = json.loads(text)["ingest"]
    assert value(first, "relaycast_ingest_bytes_total", stream_id=sid) == health["bytesIn"]
    assert value(first, "relaycast_ingest_frames_total", stream_id=sid) == 51
    assert (
        value(first, "relaycast_ingest_keyframe_interval_seconds", stream_id=sid)
        == health["video"]["keyframeInterval"]
        == 1.0
    )
    assert value(first, "relaycast_ingest_video_frames_per_second", stream_id=sid) == 25.0
    assert value(first, "relaycast_ingest_bitrate_bits_per_second", stream_id=sid) == pytest.approx(
        health["bitrate"], rel=0.05
    )
    assert value(first, "relaycast_ingest_publishers", protocol="rtmp") == 1

    now = time.monotonic()
    for i in range(51, 61):
        claim.received(500, now)
        claim.frame(_video(i))
    second = await plane.scrape()
    assert value(second, "relaycast_ingest_bytes_total", stream_id=sid) == health["bytesIn"] + 5000
    assert value(second, "relaycast_ingest_frames_total", stream_id=sid) == 61


async def test_a_slow_reader_s_drops_are_counted_by_kind(plane: Plane) -> None:
    sid, claim = await _publish(plane, 1)
    stream = plane.ingest.registry.get(sid)
    assert stream is not None
    reader = stream.reader("slow", "push", max_frames=16, max_bytes=1 << 20)
    for i in range(1, 200):
        claim.frame(_video(i, gop=50))
    samples = await plane.scrape()
    dropped = value(
        samples, "relaycast_bus_frames_dropped_total", stream_id=sid, reader_kind="push"
    )
    assert dropped is not None and dropped == reader.stats().dropped_frames > 0


async def test_api_requests_are_counted_by_route_template(plane: Plane) -> None:
    a = await plane.post("/v1/live-streams", {"name": "a"})
    b = await plane.post("/v1/live-streams", {"name": "b"})
    for sid in (a["streamId"], b["streamId"], "ls_missing"):
        await plane.get(f"/v1/live-streams/{sid}", plane.admin)
    await plane.get("/nowhere/at/all")
    samples = await plane.scrape()
    template = "/v1/live-streams/{streamId}"
    ok = value(samples, "relaycast_api_requests_total", method="GET", route=template, status="200")
    missing = value(
        samples, "relaycast_api_requests_total", method="GET", route=template, status="404"
    )
    assert (ok, missing) == (2, 1)
    count = value(
        samples, "relaycast_api_request_duration_seconds_count", method="GET", route=template
    )
    assert count == 3
    routes = {dict(labels).get("route") for (_, labels) in samples if dict(labels).get("route")}
    assert "unmatched" in routes
    assert not any(a["streamId"] in r or "nowhere" in r for r in routes if r)


async def test_auth_failures_by_protocol_and_reason(plane: Plane) -> None:
    await plane.get("/v1/live-streams")
    await plane.get("/v1/live-streams", "not-a-key")
    await plane.get("/v1/live-streams", "not-a-key")
    for _ in range(3):
        plane.ingest.refusals.report(
            "rtmp", "127.0.0.1:5", "other", RefusalReason.WRONG_APP, "unknown application"
        )
    with pytest.raises(Exception, match="unknown stream key"):
        await plane.ingest.claim("rk_guess", Publisher(protocol="srt"), "rk_g****")
    samples = await plane.scrape()
    name = "relaycast_auth_failures_total"
    assert value(samples, name, protocol="http", reason="missing-credentials") == 1
    assert value(samples, name, protocol="http", reason="invalid-credentials") == 2
    assert value(samples, name, protocol="rtmp", reason="wrong-app") == 3
    assert value(samples, name, protocol="srt", reason="unknown-key") == 1


async def test_rtmp_refusals_answered_late_are_counted(make_plane: PlaneFactory) -> None:
    """Key guessing slowed down by the per-address throttle shows up in /metrics."""
    plane = await make_plane(rtmp={"refusal_delay_max": 0.05})
    name = "relaycast_rtmp_refusals_throttled_total"
    assert value(await plane.scrape(), name) == 0
    for _ in range(5):  # three answered at once, then each one later
        events, _ = await rtmp_publish(plane.rtmp, "sk_guess")
        assert any(isinstance(e, rtmp.PublishFailed) for e in events)
    assert plane.rtmp.counters.throttled == 2
    assert value(await plane.scrape(), name) == 2


async def test_hls_requests_by_kind_and_status(plane: Plane) -> None:
    for name in ("media.m3u8", "media.m3u8", "seg1.m4s", "notes.txt"):
        assert (await plane.get(f"/live/nosuchedge/{name}"))[0] == 404
    samples = await plane.scrape()
    name = "relaycast_hls_requests_total"
    assert value(samples, name, kind="media", status="404") == 2
    assert value(samples, name, kind="segment", status="404") == 1
    assert value(samples, name, kind="unknown", status="404") == 1
    assert value(samples, "relaycast_hls_blocking_reload_wait_seconds_count") == 0
    hls_in_api = [labels for (n, labels) in samples if n == "relaycast_api_requests_total"]
    assert not any(dict(labels)["route"].startswith("/live/") for labels in hls_in_api)


async def test_label_sets_stay_bounded_under_random_keys(plane: Plane) -> None:
    keys = [f"rk_{secrets.token_hex(12)}" for _ in range(100)]

    async def refuse(batch: list[str]) -> str:
        for key in batch:
            remote = f"10.0.0.1:{secrets.randbelow(60000)}"
            with pytest.raises(Exception, match="unknown stream key"):
                await plane.ingest.claim(key, Publisher(remote=remote))
            await plane.get("/v1/live-streams", key)
        return (await plane.get("/metrics"))[1]

    await plane.get("/metrics")  # the scrape's own series exist from the second one on
    early = parse(await refuse(keys[:5]))
    text = await refuse(keys[5:])
    after = parse(text)
    assert set(after) == set(early)  # 95 more random keys and ports: not one new series
    assert not any(k in text for k in keys)
    assert "10.0.0.1" not in text
    name = "relaycast_auth_failures_total"
    assert value(after, name, protocol="rtmp", reason="unknown-key") == 100
    assert value(after, name, protocol="http", reason="invalid-credentials") == 100


async def test_a_token_guards_metrics(make_plane: PlaneFactory) -> None:
    plane = await make_plane(metrics={"token": "scrape-token-0123456789"})
    assert (await plane.get("/metrics"))[0] == 401
    assert (await plane.get("/metrics", "scrape-token-wrong-456789"))[0] == 401
    assert (await plane.get("/metrics", plane.admin))[0] == 401  # API keys are not the token
    assert (await plane.get("/metrics", "scrape-token-0123456789"))[0] == 200


async def test_disabled_or_moved_metrics_are_not_on_the_api_port(
    make_plane: PlaneFactory,
) -> None:
    moved = await make_plane(metrics={"port": 0})
    assert (await moved.get("/metrics"))[0] == 404


async def test_webhook_hook_exports_deliveries_by_result(plane: Plane) -> None:
    assert plane.metrics.collector is not None
    plane.metrics.collector.sources.webhook_results = lambda: {"delivered": 4, "failed": 1}
    samples = await plane.scrape()
    assert value(samples, "relaycast_webhook_deliveries_total", result="delivered") == 4
    assert value(samples, "relaycast_webhook_deliveries_total", result="failed") == 1


@dataclass
class Pushes:
    """A push manager's ``statuses()`` as the metrics layer reads it."""

    rows: list[tuple[str, str, DestinationStatus]]

    def statuses(self) -> list[tuple[str, str, DestinationStatus]]:
        return self.rows


async def test_destinations_by_state_and_their_counters(plane: Plane) -> None:
    assert plane.metrics.collector is not None
    pushes = Pushes(
        [
            ("ls_1", "ds_a", DestinationStatus(PushState.ACTIVE, bytes_sent=5000, reconnects=1)),
            ("ls_1", "ds_b", DestinationStatus(PushState.ERROR, last_error="refused")),
            ("ls_2", "ds_c", DestinationStatus(PushState.ACTIVE, dropped_frames=7)),
        ]
    )
    plane.metrics.collector.sources.push = pushes
    samples = await plane.scrape()
    assert value(samples, "relaycast_destinations", state="active") == 2
    assert value(samples, "relaycast_destinations", state="error") == 1
    assert value(samples, "relaycast_destinations", state="connecting") == 0
    ids = {"stream_id": "ls_1", "destination_id": "ds_a"}
    assert value(samples, "relaycast_destination_bytes_sent_total", **ids) == 5000
    assert value(samples, "relaycast_destination_reconnects_total", **ids) == 1
    dropped = value(
        samples,
        "relaycast_destination_frames_dropped_total",
        stream_id="ls_2",
        destination_id="ds_c",
    )
    assert dropped == 7
    pushes.rows[0] = ("ls_1", "ds_a", DestinationStatus(PushState.ACTIVE, bytes_sent=9000))
    samples = await plane.scrape()
    assert value(samples, "relaycast_destination_bytes_sent_total", **ids) == 9000


async def test_a_bad_playback_token_counts_as_an_hls_auth_failure(plane: Plane) -> None:
    stream = plane.ingest.registry.create("ls_private")
    plane.hls.start(PlaybackInfo("ls_private", "edge1", True, private=True), stream)
    assert (await plane.get("/live/edge1/media.m3u8?token=forged"))[0] == 401
    assert (await plane.get("/live/edge1/media.m3u8"))[0] == 401
    samples = await plane.scrape()
    failures = value(
        samples, "relaycast_auth_failures_total", protocol="hls", reason="invalid-token"
    )
    assert failures == 2
    assert value(samples, "relaycast_hls_requests_total", kind="media", status="401") == 2
    plane.ingest.registry.remove("ls_private")
    await plane.hls.close()


async def test_vod_playback_is_not_an_api_request_and_a_401_is_a_vod_auth_failure(
    plane: Plane,
) -> None:
    environment = (await plane.store.environments.ensure("default"))[0].id
    private = Media(
        id="med_00000000000000000000000a",
        environment_id=environment,
        name="x",
        status="ready",
        source="upload",
        filename="x.mp4",
        path="x/x.mp4",
        created_at=datetime.now(UTC),
    )
    await plane.store.media.add(private)
    assert (await plane.get(f"/vod/{private.id}/seg0.m4s"))[0] == 401
    assert (await plane.get("/vod/med_00000000000000000000000b/master.m3u8"))[0] == 404
    samples = await plane.scrape()
    assert value(samples, "relaycast_auth_failures_total", protocol="vod", reason="invalid-token")
    assert value(samples, "relaycast_vod_requests_total", kind="segment", status="401") == 1
    assert value(samples, "relaycast_vod_requests_total", kind="master", status="404") == 1
    routes = {dict(labels).get("route") for (n, labels) in samples if "_api_" in n}
    assert not any(route and route.startswith("/vod/") for route in routes), routes


async def test_the_recorder_families(plane: Plane, tmp_path: Path) -> None:
    recorder = RecordService(tmp_path / "rec", RecordSettings(min_free_bytes=0), RecCatalog())
    assert plane.metrics.collector is not None
    plane.metrics.collector.sources.record = recorder
    samples = await plane.scrape()
    assert value(samples, "relaycast_recordings_active") == 0
    assert value(samples, "relaycast_recording_bytes_written_total") == 0
    stream = Stream("ls_rec")
    recorder.stream_opened(StreamGrant("ls_rec", "env_1", True, 2, recording=True), stream, "s")
    await rec_publish(stream, media(seconds=2))
    assert value(await plane.scrape(), "relaycast_recordings_active") == 1
    stream.end("done")
    await recorder.close()
    samples = await plane.scrape()
    stats = recorder.stats()
    assert stats.bytes_written > 10_000
    assert value(samples, "relaycast_recordings_active") == 0
    assert value(samples, "relaycast_recording_bytes_written_total") == stats.bytes_written
    assert value(samples, "relaycast_recording_write_errors_total") == 0
    assert value(samples, "relaycast_recording_frames_dropped_total") == 0


async def test_unknown_methods_share_one_label(plane: Plane) -> None:
    for method in ("BREW", "PROPFIND", "X-RANDOM-1"):
        async with plane.http.request(method, plane.base + "/v1/live-streams") as resp:
            assert resp.status in (400, 401, 405)  # the HTTP parser refuses some itself
    samples = await plane.scrape()
    methods = {
        dict(labels)["method"] for (n, labels) in samples if n == "relaycast_api_requests_total"
    }
    assert "other" in methods
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}


def test_metrics_settings_are_validated() -> None:
    with pytest.raises(SettingsError, match=r"metrics\.port must differ from server\.http_port"):
        load_settings(environ={}, overrides={"metrics": {"port": 8080}})
    with pytest.raises(SettingsError, match=r"metrics\.token"):
        load_settings(environ={}, overrides={"metrics": {"token": "short"}})
    assert load_settings(environ={}, overrides={"metrics": {"port": 9100}}).metrics.port == 9100
