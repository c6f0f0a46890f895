"""Metrics, refusal diagnostics and log ids against a real server and real ffmpeg.

The module's server serves /metrics on its own listener behind a token, so these
tests also cover ``metrics.port`` and ``metrics.token`` end to end.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from server.protocols import rtmp
from tests.conftest import require_program
from tests.interop.conftest import (
    BareRtmpPublisher,
    Peers,
    Relaycast,
    StartRelaycast,
    ffmpeg_publish,
    wait_for,
)

pytestmark = pytest.mark.interop

TOKEN = "interop-scrape-token-" + secrets.token_hex(8)
SMALL = "320x180"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def relaycast_env() -> dict[str, str]:
    return {
        "RELAYCAST_METRICS__TOKEN": TOKEN,
        "RELAYCAST_METRICS__PORT": "0",
        "RELAYCAST_METRICS__HOST": "127.0.0.1",
    }


def metrics_url(relaycast: Relaycast) -> str:
    match = re.search(r"listening metrics (http://\S+/metrics)", relaycast.log())
    assert match, relaycast.log()
    return match.group(1)


def fetch(url: str, token: str | None = TOKEN) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def scrape(relaycast: Relaycast) -> tuple[Samples, str]:
    status, text = fetch(metrics_url(relaycast))
    assert status == 200, text
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out, text


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def labelsets(samples: Samples, name: str) -> set[tuple[tuple[str, str], ...]]:
    return {labels for (n, labels) in samples if n == name}


def _last_msn(playlist: str) -> int:
    return max(int(n) for n in re.findall(r"^seg(\d+)\.m4s", playlist, re.M))


def test_metrics_listener_is_separate_and_needs_the_token(relaycast: Relaycast) -> None:
    url = metrics_url(relaycast)
    assert fetch(url, None)[0] == 401
    assert fetch(url, "wrong-token-wrong-token")[0] == 401
    assert fetch(url, relaycast.api.key)[0] == 401
    assert fetch(relaycast.server.base + "/metrics")[0] == 404  # not on the API port


def test_metrics_move_while_ffmpeg_publishes(relaycast: Relaycast, peers: Peers) -> None:
    stream = relaycast.api.create_stream("metrics", reconnectWindowSeconds=0)
    sid = stream["streamId"]
    ffmpeg = peers.start("ffmpeg", ffmpeg_publish(relaycast.publish_url(stream), 14, size=SMALL))
    relaycast.api.wait_media(sid, timeout=10)

    first, _ = scrape(relaycast)
    media = stream["playback"]["hlsUrl"].replace("master.m3u8", "media.m3u8")
    playlist = wait_for(
        lambda: fetch(media, None),
        lambda r: r[0] == 200 and "seg" in r[1],
        timeout=10,
        what="a media playlist with a segment",
    )[1]
    blocked = f"{media}?_HLS_msn={_last_msn(playlist) + 1}"
    assert fetch(blocked, None)[0] == 200  # held until the next segment exists
    time.sleep(1.0)
    second, _ = scrape(relaycast)
    health = relaycast.api.health(sid)
    ingest = health["ingest"]

    for name in ("relaycast_ingest_bytes_total", "relaycast_ingest_frames_total"):
        assert value(second, name, stream_id=sid) > value(first, name, stream_id=sid) > 0, name
    assert value(second, "relaycast_ingest_bytes_total", stream_id=sid) <= ingest["bytesIn"]
    assert (
        value(second, "relaycast_ingest_keyframe_interval_seconds", stream_id=sid)
        == (ingest["video"]["keyframeInterval"])
    )
    fps = value(second, "relaycast_ingest_video_frames_per_second", stream_id=sid)
    assert fps == pytest.approx(ingest["video"]["fps"], abs=1.5)
    bitrate = value(second, "relaycast_ingest_bitrate_bits_per_second", stream_id=sid)
    assert bitrate == pytest.approx(ingest["bitrate"], rel=0.3)

    listed = relaycast.api.ok("GET", "/v1/live-streams?limit=100")["streams"]
    live = sum(1 for s in listed if s["state"] == "live")
    assert value(second, "relaycast_streams", state="live") == live >= 1
    assert value(second, "relaycast_ingest_publishers", protocol="rtmp") == live
    assert value(second, "relaycast_ingest_connections", protocol="rtmp") >= 1
    assert value(second, "relaycast_hls_viewers", stream_id=sid) == 1
    hls_ok = value(second, "relaycast_hls_requests_total", kind="media", status="200")
    assert hls_ok > value(first, "relaycast_hls_requests_total", kind="media", status="200")
    waits = "relaycast_hls_blocking_reload_wait_seconds_count"
    assert value(second, waits) == value(first, waits) + 1
    assert value(second, "relaycast_hls_blocking_reload_wait_seconds_sum") > 0
    assert (
        value(second, "relaycast_bus_frames_dropped_total", stream_id=sid, reader_kind="hls") == 0
    )
    assert (sid, "hls") in {
        (dict(labels)["stream_id"], dict(labels)["reader_kind"])
        for labels in labelsets(second, "relaycast_bus_frames_dropped_total")
    }
    api_route = value(
        second,
        "relaycast_api_requests_total",
        method="GET",
        route="/v1/live-streams/{streamId}/health",
        status="200",
    )
    assert api_route >= 1

    assert ffmpeg.wait(20) == 0, ffmpeg.output()
    relaycast.api.wait_state(sid, "ended", timeout=10)
    after, _ = scrape(relaycast)
    assert ("relaycast_ingest_bytes_total", (("stream_id", sid),)) not in after

    # every media-plane line of this session names the stream, session and connection
    session = ingest["sessionId"]
    lines = [line for line in relaycast.log().splitlines() if f"stream_id={sid}" in line]
    assert any("relaycast.rtmp" in line for line in lines) or any(
        "relaycast.ingest" in line for line in lines
    ), lines
    for line in lines:
        if "relaycast.ingest" in line and "refused" not in line:
            assert f"session_id={session}" in line, line
            assert re.search(r"connection_id=(rtmp-\d+|-)", line), line
    assert any(re.search(r"connection_id=rtmp-\d+", line) for line in lines), lines


def test_random_key_refusals_keep_label_sets_bounded(relaycast: Relaycast) -> None:
    def refuse(count: int) -> list[str]:
        keys = [f"rk_{secrets.token_urlsafe(18)}" for _ in range(count)]
        for key in keys:
            bare = BareRtmpPublisher(relaycast.rtmp_url, key)
            try:
                answer = bare.publish()
                assert isinstance(answer, rtmp.PublishFailed), bare.events
            finally:
                bare.close()
        return keys

    refuse(5)
    early, _ = scrape(relaycast)
    keys = refuse(100)
    late, text = scrape(relaycast)
    failures = "relaycast_auth_failures_total"
    assert labelsets(late, failures) == labelsets(early, failures)
    grown = value(late, failures, protocol="rtmp", reason="unknown-key") - value(
        early, failures, protocol="rtmp", reason="unknown-key"
    )
    assert grown == 100
    accepted = "relaycast_rtmp_connections_accepted_total"
    assert value(late, accepted) - value(early, accepted) == 100
    media_families = {n for (n, _) in late if not n.startswith("relaycast_api_")}
    for name in media_families:
        assert len(labelsets(late, name)) == len(labelsets(early, name)) or name in {
            "relaycast_hls_requests_total",
            "relaycast_streams",
        }, name
    assert not any(key in text or key[:12] in text for key in keys)
    assert not re.search(r"127\.0\.0\.1:\d+", text)  # no remote addresses or ports


def _failures(relaycast: Relaycast) -> list[dict[str, Any]]:
    doc = relaycast.api.ok("GET", "/v1/ingest/failures?limit=100")
    return list(doc["failures"])


def test_failures_endpoint_explains_each_rtmp_refusal(relaycast: Relaycast, peers: Peers) -> None:
    # unknown key
    unknown = f"rk_{secrets.token_urlsafe(18)}"
    bare = BareRtmpPublisher(relaycast.rtmp_url, unknown)
    try:
        assert isinstance(bare.publish(), rtmp.PublishFailed)
    finally:
        bare.close()
    # wrong app: a key pasted into the server URL
    pasted = f"rk_{secrets.token_urlsafe(18)}"
    bare = BareRtmpPublisher(relaycast.rtmp_url, "x", app=f"{pasted}")
    try:
        assert not isinstance(bare.publish(), rtmp.PublishStarted)
    finally:
        bare.close()
    # stream stopped
    stopped = relaycast.api.create_stream("stopped")
    relaycast.api.ok("POST", f"/v1/live-streams/{stopped['streamId']}/stop")
    bare = BareRtmpPublisher(relaycast.rtmp_url, stopped["ingest"]["streamKey"])
    try:
        assert isinstance(bare.publish(), rtmp.PublishFailed)
    finally:
        bare.close()
    # key in use
    busy = relaycast.api.create_stream("busy", reconnectWindowSeconds=0)
    first = peers.start("ffmpeg-first", ffmpeg_publish(relaycast.publish_url(busy), 8, size=SMALL))
    relaycast.api.wait_state(busy["streamId"], "live", timeout=10)
    bare = BareRtmpPublisher(relaycast.rtmp_url, busy["ingest"]["streamKey"])
    try:
        assert isinstance(bare.publish(), rtmp.PublishFailed)
    finally:
        bare.close()
    # limits: 1080p on the basic plan (720p at most)
    small = relaycast.api.create_stream("limited", plan="basic", reconnectWindowSeconds=0)
    big = peers.start(
        "ffmpeg-1080p", ffmpeg_publish(relaycast.publish_url(small), 5, size="1920x1080")
    )
    relaycast.api.wait_state(small["streamId"], "error", timeout=10)
    big.wait(10)
    first.wait(15)

    expected = {
        "unknown-key": (None, f"live/{unknown[:4]}****"),
        "wrong-app": (None, f"{pasted[:4]}****"),
        "stream-stopped": (stopped["streamId"], f"live/{stopped['ingest']['streamKey'][:4]}****"),
        "key-in-use": (busy["streamId"], f"live/{busy['ingest']['streamKey'][:4]}****"),
        "limits": (small["streamId"], ""),
    }

    def found() -> dict[str, tuple[str | None, str]]:
        out: dict[str, tuple[str | None, str]] = {}
        for f in _failures(relaycast):
            if (f.get("streamId"), f["attempted"]) == expected.get(f["reason"]):
                out[f["reason"]] = (f.get("streamId"), f["attempted"])
        return out

    wait_for(found, lambda got: got == expected, timeout=5, what="every refusal reason")
    text = str(_failures(relaycast))
    for secret in (unknown, pasted, stopped["ingest"]["streamKey"], busy["ingest"]["streamKey"]):
        assert secret not in text
        assert secret not in relaycast.log()
    limits = next(f for f in _failures(relaycast) if f["reason"] == "limits")
    assert "1920x1080" in limits["detail"] or "resolution" in limits["detail"], limits


def ffmpeg_srt(url: str, seconds: float) -> list[str]:
    """ffmpeg + libsrt publishing H.264/AAC in MPEG-TS (protocols.md section 7 test 2)."""
    return [
        require_program("ffmpeg"),
        *("-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning", "-re"),
        *("-f", "lavfi", "-i", f"testsrc2=size={SMALL}:rate=25"),
        *("-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000"),
        *("-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency"),
        *("-g", "50", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k"),
        *("-f", "mpegts", url),
    ]


def test_srt_link_metrics_equal_the_health_api(relaycast: Relaycast, peers: Peers) -> None:
    stream = relaycast.api.create_stream("srt metrics", reconnectWindowSeconds=0)
    sid, key = stream["streamId"], stream["ingest"]["streamKey"]
    base = relaycast.server.srt_url
    assert base, relaycast.log()
    url = f"{base}?streamid=#!::r=live/{key},m=publish&latency=200000&pkt_size=1316"
    ffmpeg = peers.start("ffmpeg-srt", ffmpeg_srt(url, 10))
    relaycast.api.wait_health(
        sid, lambda h: (h.get("ingest") or {}).get("protocol") == "srt", 10, "an SRT publisher"
    )
    time.sleep(1.0)
    first, _ = scrape(relaycast)
    time.sleep(1.0)
    second, _ = scrape(relaycast)
    link = relaycast.api.health(sid)["ingest"]["srt"]

    received = "relaycast_srt_packets_received_total"
    assert value(second, received, stream_id=sid) > value(first, received, stream_id=sid) > 0
    assert value(second, received, stream_id=sid) <= link["packetsReceived"]
    assert value(second, "relaycast_srt_packets_lost_total", stream_id=sid) <= link["packetsLost"]
    rtt = value(second, "relaycast_srt_rtt_seconds", stream_id=sid)
    assert 0 <= rtt < 0.1
    assert ("relaycast_srt_loss_ratio", (("stream_id", sid),)) in second
    assert ("relaycast_srt_packets_retransmitted_total", (("stream_id", sid),)) in second
    assert value(second, "relaycast_ingest_publishers", protocol="srt") == 1
    assert value(second, "relaycast_ingest_connections", protocol="srt") >= 1
    assert value(second, "relaycast_ingest_frames_total", stream_id=sid) > 0
    ffmpeg.kill()
    srt_lines = [
        line for line in relaycast.log().splitlines() if "relaycast.ingest" in line and sid in line
    ]
    assert any(re.search(r"connection_id=srt-\d+", line) for line in srt_lines), srt_lines


def _free_port() -> int:
    """A free TCP port below 10000 (the destination URL schema takes 1-4 digit ports)."""
    for _ in range(200):
        port = 2000 + secrets.randbelow(8000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port below 10000")


def test_destination_metrics_follow_the_push_status(
    relaycast: Relaycast, peers: Peers, tmp_path: Path
) -> None:
    stream = relaycast.api.create_stream("push metrics", reconnectWindowSeconds=0)
    sid = stream["streamId"]
    path = f"/v1/live-streams/{sid}/destinations"
    port, dead = _free_port(), _free_port()
    receiver = [
        require_program("ffmpeg"),
        *("-hide_banner", "-nostdin", "-v", "error", "-y", "-listen", "1"),
        *("-i", f"rtmp://127.0.0.1:{port}/live/recv", "-c", "copy", "-f", "flv"),
        str(tmp_path / "recv.flv"),
    ]
    peers.start("ffmpeg-listen", receiver, limit=60)
    time.sleep(0.5)
    good = relaycast.api.ok(
        "POST", path, {"url": f"rtmp://127.0.0.1:{port}/live", "streamKey": "recv"}, status=201
    )["destinationId"]
    bad = relaycast.api.ok(
        "POST", path, {"url": f"rtmp://127.0.0.1:{dead}/live", "streamKey": "x"}, status=201
    )["destinationId"]
    peers.start("ffmpeg", ffmpeg_publish(relaycast.publish_url(stream), 14, size=SMALL))

    def statuses() -> dict[str, dict[str, Any]]:
        doc = relaycast.api.ok("GET", path)
        return {d["destinationId"]: d["status"] for d in doc["destinations"]}

    wait_for(
        statuses,
        lambda s: s[good]["state"] == "active" and s[bad]["reconnects"] >= 1,
        timeout=15,
        what="one destination active, the other retrying",
        every=0.25,
    )
    first, _ = scrape(relaycast)
    time.sleep(1.0)
    second, _ = scrape(relaycast)
    after = statuses()

    ids = {"stream_id": sid, "destination_id": good}
    sent = "relaycast_destination_bytes_sent_total"
    assert value(second, sent, **ids) > value(first, sent, **ids) > 0
    assert value(second, sent, **ids) <= after[good]["bytesSent"]
    reconnects = "relaycast_destination_reconnects_total"
    assert value(second, reconnects, stream_id=sid, destination_id=bad) >= 1
    assert value(second, reconnects, stream_id=sid, destination_id=bad) <= after[bad]["reconnects"]
    assert value(second, "relaycast_destinations", state="active") >= 1
    in_states = sum(value(second, "relaycast_destinations", state=s) for s in STATES)
    assert in_states >= 2


STATES = ("idle", "connecting", "active", "error", "disabled")


def test_json_logs_carry_the_ids_on_media_plane_lines(start_relaycast: StartRelaycast) -> None:
    server = start_relaycast(env={"RELAYCAST_SERVER__LOG_FORMAT": "json"})
    stream = server.api.create_stream("json logs", reconnectWindowSeconds=0)
    sid, key = stream["streamId"], stream["ingest"]["streamKey"]

    def records() -> list[dict[str, Any]]:
        lines = [line for line in server.log().splitlines() if line.strip()]
        return [json.loads(line) for line in lines]  # every line is one JSON object

    rtmp_url = next(
        r["msg"].split(" ")[2] for r in records() if r["msg"].startswith("listening rtmp ")
    )
    bare = BareRtmpPublisher(rtmp_url, key)
    try:
        assert isinstance(bare.publish(), rtmp.PublishStarted), bare.events
        server.api.wait_state(sid, "connecting", timeout=5)
    finally:
        bare.close()
    server.api.wait_state(sid, "ended", timeout=5)
    session = server.api.sessions(sid)["sessions"][0]["sessionId"]

    ours = [r for r in records() if r.get("stream_id") == sid]
    assert {r["logger"] for r in ours} >= {"relaycast.ingest"}, ours
    for record in ours:
        assert record["session_id"] == session, record
        assert re.fullmatch(r"rtmp-\d+|-", record["connection_id"]), record
        assert record["level"] in {"info", "warning"} and record["time"].endswith("+00:00")
    assert any(r["connection_id"].startswith("rtmp-") for r in ours), ours
    assert key not in server.log()
