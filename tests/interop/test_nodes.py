"""Several nodes on one PostgreSQL (issue 22): real servers, real ffmpeg publishers."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from server.protocols import rtmp
from tests.conftest import require_program
from tests.interop.channel_helpers import make_channel, make_item, now_playing, upload
from tests.interop.conftest import (
    BASE_ENV,
    Api,
    BareRtmpPublisher,
    Peers,
    Relaycast,
    ffmpeg_publish,
    wait_for,
)
from tests.interop.test_hls_playback import _probe_until_ready
from tests.interop.test_srt_ingest import ffmpeg_srt
from tests.interop.webrtc_peers import WhepViewer
from tests.serverproc import start_server
from tests.store.conftest import _drop_pg_database, _fresh_pg_database, require_pg_url
from tests.tls import self_signed
from tests.webhook_receiver import Receiver

SMALL = "320x180"

# several servers and encoders per test, and 2 s deadlines: runs alone, last
# (scripts/test.sh)
pytestmark = [pytest.mark.serial, pytest.mark.solo]


@pytest.fixture
def pg_url() -> Iterator[str]:
    url = asyncio.run(_fresh_pg_database(require_pg_url()))
    yield url
    asyncio.run(_drop_pg_database(url))


class Nodes:
    """Servers started by one test over one database; all stopped at its end."""

    def __init__(self, tmp_path: Path, db_url: str) -> None:
        self.tmp_path = tmp_path
        self.env = {**BASE_ENV, "RELAYCAST_DATABASE__URL": db_url}
        self.started: list[Relaycast] = []
        self.key = ""

    def start(
        self, name: str, *args: str, data_dir: str | None = None, timeout: float = 20.0
    ) -> Relaycast:
        """``data_dir``: a folder shared with other nodes (the media library's files)."""
        data = self.tmp_path / (data_dir or name)
        server = start_server(data, "--node-name", name, *args, env=self.env, timeout=timeout)
        self.key = self.key or server.bootstrap_key or ""
        running = Relaycast(server, Api(server.base, self.key), data)
        self.started.append(running)
        return running

    def stop(self) -> None:
        for running in self.started:
            running.server.stop()


@pytest.fixture
def nodes(tmp_path: Path, pg_url: str) -> Iterator[Nodes]:
    started = Nodes(tmp_path, pg_url)
    try:
        yield started
    finally:
        started.stop()


def healthz(base: str) -> dict[str, str]:
    with urllib.request.urlopen(base + "/healthz", timeout=5) as resp:
        doc: dict[str, str] = json.loads(resp.read())
        return doc


def _handed_by_worker(base: str, names: set[str]) -> dict[str, dict[str, float]]:
    """Each worker's ``relaycast_rtmp_connections_handed_total`` (plain RTMP), scraped
    through the shared port until both workers have answered."""
    found: dict[str, dict[str, float]] = {}

    def scrape() -> dict[str, dict[str, float]]:
        with urllib.request.urlopen(base + "/metrics", timeout=5) as resp:
            text = resp.read().decode()
        node = re.search(r'relaycast_node_info\{node="([^"]+)"', text)
        assert node is not None, text[:500]
        handed = re.findall(
            r'relaycast_rtmp_connections_handed_total\{direction="(\w+)",listener="rtmp"\} (\S+)',
            text,
        )
        found[node.group(1)] = {direction: float(value) for direction, value in handed}
        return found

    wait_for(scrape, lambda seen: set(seen) == names, timeout=15, what="both workers' metrics")
    assert all(set(h) == {"passed", "received"} for h in found.values()), found
    return found


def test_one_key_publishes_on_one_node_only(nodes: Nodes, peers: Peers) -> None:
    a = nodes.start("node-a", "--region", "local")
    stream = a.api.create_stream("shared", reconnectWindowSeconds=1)
    sid, key = stream["streamId"], stream["ingest"]["streamKey"]
    first = peers.start("ffmpeg-a", ffmpeg_publish(f"{a.rtmp_url}/{key}", 8, size=SMALL))
    before = a.api.wait_media(sid, timeout=10)["ingest"]

    # B starts while A carries the stream: its start-up must not end A's session
    b = nodes.start("node-b")
    assert (healthz(a.server.base)["node"], healthz(b.server.base)["node"]) == ("node-a", "node-b")
    assert b.api.ok("GET", "/v1/regions") == {"regions": ["local"]}
    assert b.api.state(sid) == "live"

    second = peers.start("ffmpeg-b", ffmpeg_publish(f"{b.rtmp_url}/{key}", 3, size=SMALL))
    assert second.wait(8) != 0
    assert "already in use" in second.output(), second.output()
    refusals = b.api.ok("GET", "/v1/ingest/failures")["failures"]
    assert [r["reason"] for r in refusals if r["streamId"] == sid] == ["key-in-use"]

    after = a.api.health(sid)["ingest"]
    assert after["sessionId"] == before["sessionId"]
    assert a.api.sessions(sid)["total"] == 1
    assert first.running()
    assert first.wait(15) == 0, first.output()
    a.api.wait_state(sid, "ended", timeout=10)

    # the claim went with the session: now B may carry the key
    third = peers.start("ffmpeg-b2", ffmpeg_publish(f"{b.rtmp_url}/{key}", 3, size=SMALL))
    b.api.wait_state(sid, "live", timeout=10)
    assert third.wait(10) == 0, third.output()
    sessions = wait_for(
        lambda: a.api.sessions(sid),
        lambda doc: doc["total"] == 2 and all(s.get("endedAt") for s in doc["sessions"]),
        timeout=10,
        what="both sessions ended",
    )
    assert sessions["total"] == 2


def _free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _open_sessions(db_url: str) -> list[str]:
    """The node each open session's encoder reached, as the database recorded it."""

    async def query() -> list[str]:
        import asyncpg

        conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            rows = await conn.fetch("SELECT node FROM sessions WHERE ended_at IS NULL")
        finally:
            await conn.close()
        return [str(row["node"]) for row in rows]

    return asyncio.run(query())


def test_workers_share_the_ports_and_spread_publishers(
    nodes: Nodes, pg_url: str, peers: Peers, tmp_path: Path
) -> None:
    http, rtmp_port = _free_port(socket.SOCK_STREAM), _free_port(socket.SOCK_STREAM)
    srt, rtmps = _free_port(socket.SOCK_DGRAM), _free_port(socket.SOCK_STREAM)
    ports = ("--http-port", str(http), "--rtmp-port", str(rtmp_port), "--srt-port", str(srt))
    cert, key = self_signed(tmp_path)
    nodes.env.update(RELAYCAST_RTMPS__CERT=str(cert), RELAYCAST_RTMPS__KEY=str(key))
    nodes.env["RELAYCAST_RTMPS__PORT"] = str(rtmps)
    workers = nodes.start("box", "--workers", "2", *ports, timeout=60)  # two start at once
    names = {"box-1", "box-2"}
    answered: set[str] = set()
    wait_for(
        lambda: answered.add(healthz(workers.server.base)["node"]) or answered,
        lambda seen: seen == names,
        timeout=15,
        what="both workers answering /healthz on one port",
        every=0.05,
    )
    # the kernel's hash alone lands 20 connections anywhere from 10/10 to 15/5 and
    # worse; the workers pass the excess on, so the spread is even
    streams = [workers.api.create_stream(f"w{i}") for i in range(20)]
    publishers = []
    try:
        for stream in streams:
            bare = BareRtmpPublisher(workers.rtmp_url, stream["ingest"]["streamKey"])
            publishers.append(bare)
            assert isinstance(bare.publish(), rtmp.PublishStarted)
        spread = _open_sessions(pg_url)
        counts = sorted(spread.count(name) for name in names)
        assert len(spread) == 20 and counts[1] - counts[0] <= 2, spread  # 10/10 ±1
        handed = _handed_by_worker(workers.server.base, names)
        passed = sum(h["passed"] for h in handed.values())
        assert passed == sum(h["received"] for h in handed.values()), handed
        assert passed <= 20, handed
    finally:
        for bare in publishers:
            bare.close()

    # media through whichever worker the kernel picked, played from both
    stream = streams[0]
    peer = peers.start(
        "ffmpeg",
        ffmpeg_publish(f"{workers.rtmp_url}/{stream['ingest']['streamKey']}", 6, size=SMALL),
    )
    workers.api.wait_media(stream["streamId"], timeout=15)
    media = stream["playback"]["hlsUrl"].replace("master.m3u8", "media.m3u8")
    played = [_get(media)[0] for _ in range(8)]  # a connection each: both workers answer
    assert played == [200] * 8, played
    assert peer.wait(15) == 0, peer.output()

    # SRT callers stay where the kernel's hash put them (UDP: handshake and data reach
    # the same worker), each worker's SRT media arrives
    base = f"srt://127.0.0.1:{srt}"
    callers = [workers.api.create_stream(f"srt{i}", reconnectWindowSeconds=0) for i in range(4)]
    for i, stream in enumerate(callers):
        url = f"{base}?streamid=#!::r=live/{stream['ingest']['streamKey']},m=publish"
        peers.start(f"ffmpeg-srt{i}", ffmpeg_srt(url, 8))
    for stream in callers:
        ingest = workers.api.wait_media(stream["streamId"], timeout=20)["ingest"]
        assert ingest["protocol"] == "srt", ingest

    # RTMPS connections are passed before TLS begins: the worker serving one does it
    tls = [workers.api.create_stream(f"tls{i}", reconnectWindowSeconds=0) for i in range(4)]
    for i, stream in enumerate(tls):
        url = f"rtmps://127.0.0.1:{rtmps}/live/{stream['ingest']['streamKey']}"
        peers.start(f"ffmpeg-tls{i}", ffmpeg_publish(url, 8, size=SMALL))
    for stream in tls:
        ingest = workers.api.wait_media(stream["streamId"], timeout=20)["ingest"]
        assert ingest["protocol"] == "rtmps", ingest
    workers.server.stop()
    assert workers.server.proc.returncode == 0, workers.log()[-2000:]


def test_rotate_and_stop_on_another_node_reach_the_encoder(nodes: Nodes, peers: Peers) -> None:
    """The API on B, the encoder on A: LISTEN/NOTIFY carries the command within 2 s."""
    a = nodes.start("node-a")
    b = nodes.start("node-b")
    stream = a.api.create_stream("remote", reconnectWindowSeconds=30)
    sid, old = stream["streamId"], stream["ingest"]["streamKey"]
    encoder = peers.start("ffmpeg", ffmpeg_publish(f"{a.rtmp_url}/{old}", 30, size=SMALL))
    a.api.wait_state(sid, "live", timeout=10)

    started = time.monotonic()
    rotated = b.api.ok("POST", f"/v1/live-streams/{sid}/rotate-key?force=true")
    encoder.wait(5)
    assert time.monotonic() - started < 2.0, "encoder on A not disconnected within 2 s"
    health = a.api.health(sid)  # inside the reconnect window: same session, encoder away
    assert health["state"] == "live" and health["ingest"]["encoderConnected"] is False

    # back to A: its claim holds the stream through the reconnect window
    new_url = f"{a.rtmp_url}/{rotated['streamKey']}"
    again = peers.start("ffmpeg-new-key", ffmpeg_publish(new_url, 30, size=SMALL))
    a.api.wait_health(
        sid, lambda h: h.get("ingest", {}).get("encoderConnected") is True, 10, "new key on A"
    )
    assert a.api.sessions(sid)["total"] == 1

    started = time.monotonic()
    stopped = b.api.ok("POST", f"/v1/live-streams/{sid}/stop")
    again.wait(5)
    assert time.monotonic() - started < 2.0, "encoder on A not stopped within 2 s"
    assert stopped["state"] == "ended" and stopped["enabled"] is False
    assert a.api.sessions(sid)["sessions"][0].get("endedAt")


def test_a_killed_node_s_stream_is_ended_once_by_another(nodes: Nodes, peers: Peers) -> None:
    nodes.env.update(
        {"RELAYCAST_NODE__LEASE_SECONDS": "3", "RELAYCAST_WEBHOOKS__ALLOW_PRIVATE_TARGETS": "true"}
    )
    a = nodes.start("node-a")
    b = nodes.start("node-b")
    with Receiver() as receiver:
        b.api.ok("POST", "/v1/webhooks", {"url": receiver.url, "events": ["stream.ended"]}, 201)
        stream = b.api.create_stream("orphan", reconnectWindowSeconds=0)
        sid = stream["streamId"]
        url = f"{a.rtmp_url}/{stream['ingest']['streamKey']}"
        peers.start("ffmpeg", ffmpeg_publish(url, 30, size=SMALL))
        b.api.wait_state(sid, "live", timeout=10)
        killed = time.monotonic()
        a.server.stop(signal.SIGKILL)
        b.api.wait_state(sid, "ended", timeout=10)
        took = time.monotonic() - killed
        assert took < 3 + 3, f"ended {took:.1f}s after the kill (lease 3 s)"
        wait_for(receiver.received, lambda got: len(got) >= 1, 5, "stream.ended", every=0.1)
        time.sleep(2)  # further sweeps (B's, every second) must not announce it again
        ended = [r.json for r in receiver.received()]
    assert [(e["type"], e["data"]["streamId"]) for e in ended] == [("stream.ended", sid)]
    (session,) = b.api.sessions(sid)["sessions"]
    assert session.get("endedAt")
    assert b.api.ok("GET", "/v1/regions") == {"regions": ["local"]}


def _drop_listeners(db_url: str) -> int:
    """What a database restart or a network cut does to the nodes' LISTEN connections."""

    async def terminate() -> int:
        import asyncpg

        conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            rows = await conn.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
            )
        finally:
            await conn.close()
        return len(rows)

    return asyncio.run(terminate())


def test_commands_still_arrive_after_the_listen_connection_dropped(
    nodes: Nodes, pg_url: str, peers: Peers
) -> None:
    nodes.env["RELAYCAST_NODE__LEASE_SECONDS"] = "3"
    a = nodes.start("node-a")
    b = nodes.start("node-b")
    stream = a.api.create_stream("relisten", reconnectWindowSeconds=0)
    sid = stream["streamId"]
    url = f"{a.rtmp_url}/{stream['ingest']['streamKey']}"
    encoder = peers.start("ffmpeg", ffmpeg_publish(url, 30, size=SMALL))
    a.api.wait_state(sid, "live", timeout=10)
    assert _drop_listeners(pg_url) == 2
    wait_for(a.log, lambda text: "listening again" in text, 5, "node A to listen again")
    b.api.ok("POST", f"/v1/live-streams/{sid}/stop")
    encoder.wait(5)
    a.api.wait_state(sid, "ended", timeout=5)


class SlowReceiver(Receiver):
    """Takes 0.3 s per request and remembers the most it had at once."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = 0
        self.most = 0

    async def _handle(self, request: web.Request) -> web.Response:
        with self._lock:
            self.inside += 1
            self.most = max(self.most, self.inside)
        try:
            await asyncio.sleep(0.3)
            return await super()._handle(request)
        finally:
            with self._lock:
                self.inside -= 1


def test_webhooks_are_delivered_once_by_busy_nodes(nodes: Nodes, peers: Peers) -> None:
    """Both nodes have events of their own, so both dispatchers look for due rows; the
    webhook's lane (concurrency_per_webhook = 1) spans both: one attempt at a time."""
    nodes.env["RELAYCAST_WEBHOOKS__ALLOW_PRIVATE_TARGETS"] = "true"
    a = nodes.start("node-a")
    b = nodes.start("node-b")
    receiver = SlowReceiver()
    with receiver:
        events = ["stream.connecting", "stream.live", "stream.ended"]
        a.api.ok("POST", "/v1/webhooks", {"url": receiver.url, "events": events}, 201)
        for node in (a, b, a, b):
            stream = node.api.create_stream("hooked", reconnectWindowSeconds=0)
            url = f"{node.rtmp_url}/{stream['ingest']['streamKey']}"
            peers.start("ffmpeg", ffmpeg_publish(url, 2, size=SMALL))
        wait_for(receiver.received, lambda got: len(got) >= 12, 30, "12 events", every=0.2)
        time.sleep(2)
        got = [r.headers["Relaycast-Delivery-Id"] for r in receiver.received()]
    assert len(got) == len(set(got)) == 12, sorted(got)
    assert receiver.most == 1


def test_a_stream_s_region_decides_which_node_its_urls_name(nodes: Nodes, peers: Peers) -> None:
    nodes.env.update({"RELAYCAST_REGIONS": '["eu-1","us-1"]', "RELAYCAST_DEFAULT_REGION": "eu-1"})
    a = nodes.start("node-a", "--region", "eu-1")
    b = nodes.start("node-b", "--region", "us-1")
    assert a.api.ok("GET", "/v1/regions") == {"regions": ["eu-1", "us-1"]}
    home = a.api.create_stream("eu")
    assert home["ingest"]["rtmpUrl"] == a.rtmp_url
    away = a.api.create_stream("us", region="us-1")
    assert away["ingest"]["rtmpUrl"] == b.rtmp_url
    assert away["ingest"]["srtUrl"] == b.server.srt_url
    assert away["playback"]["hlsUrl"].startswith(b.server.base + "/live/")
    listed = {
        s["name"]: s["ingest"]["rtmpUrl"] for s in a.api.ok("GET", "/v1/live-streams")["streams"]
    }
    assert listed == {"eu": a.rtmp_url, "us": b.rtmp_url}
    rotated = a.api.ok("POST", f"/v1/live-streams/{away['streamId']}/rotate-key")
    assert rotated["rtmpFullUrl"] == f"{b.rtmp_url}/{rotated['streamKey']}"
    encoder = peers.start("ffmpeg", ffmpeg_publish(rotated["rtmpFullUrl"], 2, size=SMALL))
    b.api.wait_state(away["streamId"], "live", timeout=10)
    assert encoder.wait(10) == 0, encoder.output()


def _connected_in_session(health: dict[str, Any]) -> bool:
    """The encoder is connected and its session recorded (the id comes from the database)."""
    ingest = health.get("ingest") or {}
    return ingest.get("encoderConnected") is True and bool(ingest.get("sessionId"))


def test_a_silent_or_gone_publisher_on_one_node_gives_way_to_another(
    nodes: Nodes, peers: Peers
) -> None:
    a = nodes.start("node-a")
    b = nodes.start("node-b")
    stream = a.api.create_stream("moving", reconnectWindowSeconds=30)
    sid, key = stream["streamId"], stream["ingest"]["streamKey"]
    stale = peers.start("ffmpeg-a", ffmpeg_publish(f"{a.rtmp_url}/{key}", 30, size=SMALL))
    first = a.api.wait_media(sid, timeout=10)["ingest"]["sessionId"]
    stale.signal(signal.SIGSTOP)  # connected but silent
    time.sleep(3.5)  # ingest.takeover_silence_seconds
    fresh = peers.start("ffmpeg-b", ffmpeg_publish(f"{b.rtmp_url}/{key}", 30, size=SMALL))
    b.api.wait_health(  # B answers with A's health until B holds the encoder
        sid,
        lambda h: _connected_in_session(h) and h["ingest"]["sessionId"] != first,
        10,
        "B's encoder",
    )
    assert "taken over on another node" in a.log()
    sessions = a.api.sessions(sid)["sessions"]
    assert len(sessions) == 2 and sessions[1].get("endedAt") and not sessions[0].get("endedAt")
    stale.signal(signal.SIGCONT)
    assert stale.wait(8) != 0  # its connection was closed on A

    # gone, inside its reconnect window: the encoder comes back on the other node and
    # goes on with the same session there (no stream.ended, no new session)
    moving_session = b.api.health(sid)["ingest"]["sessionId"]
    fresh.kill()
    wait_for(
        lambda: b.api.health(sid).get("ingest", {}).get("encoderConnected"),
        lambda connected: connected is False,
        10,
        "B's encoder gone",
    )
    back = peers.start("ffmpeg-a2", ffmpeg_publish(f"{a.rtmp_url}/{key}", 3, size=SMALL))
    health = a.api.wait_health(
        sid,
        lambda h: (
            h.get("ingest", {}).get("encoderConnected") is True and bool(h["ingest"]["sessionId"])
        ),  # recorded once the database answers
        10,
        "back on A",
    )
    assert health["ingest"]["sessionId"] == moving_session
    assert "handed over to another node" in b.log()
    sessions = a.api.sessions(sid)["sessions"]
    assert len(sessions) == 2 and not any(
        s.get("endedAt") for s in sessions if s["sessionId"] == moving_session
    )
    assert a.api.state(sid) == "live"
    assert back.wait(10) == 0, back.output()


def test_a_killed_node_s_channel_moves_to_another_from_its_position(
    nodes: Nodes, tmp_path: Path
) -> None:
    nodes.env.update({"RELAYCAST_NODE__LEASE_SECONDS": "3"})
    a = nodes.start("node-a", data_dir="shared")
    b = nodes.start("node-b", data_dir="shared")
    item = upload(a.api, make_item(tmp_path / "long.mp4", "320x180", 25, 30, "48000:stereo"))
    sid = make_channel(a.api, [item], loop=True)["streamId"]
    a.api.ok("POST", f"/v1/live-streams/{sid}/start")
    wait_for(
        lambda: now_playing(a.api, sid),
        lambda playing: playing is not None and playing["positionSeconds"] >= 4,
        30,
        "four seconds of the item on air on node A",
    )
    time.sleep(1)  # B's ticks see the channel held by A
    assert now_playing(b.api, sid) is None, "the channel plays on one node"
    before = now_playing(a.api, sid)
    assert before is not None
    a.server.stop(signal.SIGKILL)
    killed = time.monotonic()
    after = wait_for(
        lambda: now_playing(b.api, sid),
        lambda playing: playing is not None,
        15,
        "the channel on air on node B",
    )
    assert time.monotonic() - killed < 3 + 6, "within the lease (3 s) and a worker's start"
    assert after is not None and after["itemId"] == before["itemId"]
    assert abs(after["positionSeconds"] - before["positionSeconds"]) <= 4, (before, after)
    b.api.wait_state(sid, "live", timeout=10)
    assert "took over 1 channel(s)" in b.log()


def _get(url: str, timeout: float = 10) -> tuple[int, bytes, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


def test_any_node_plays_the_hls_of_a_stream_another_node_carries(
    nodes: Nodes, peers: Peers
) -> None:
    """Publish to A, play from B: B proxies master, media (blocking reloads too),
    init, segments and parts from A, even while an ended session of the stream lingers
    on B; an unknown edge id stays a 404."""
    a = nodes.start("node-a")
    b = nodes.start("node-b")
    stream = a.api.create_stream("far", reconnectWindowSeconds=0)
    sid, key = stream["streamId"], stream["ingest"]["streamKey"]
    earlier = BareRtmpPublisher(b.rtmp_url, key)  # a session on B first: it lingers there
    assert isinstance(earlier.publish(), rtmp.PublishStarted)
    earlier.close()
    b.api.wait_state(sid, "ended", timeout=10)
    peers.start("ffmpeg", ffmpeg_publish(f"{a.rtmp_url}/{key}", 20, size=SMALL))
    a.api.wait_media(sid, timeout=10)
    on_b = stream["playback"]["hlsUrl"].replace(a.server.base, b.server.base)
    assert on_b.startswith(b.server.base + "/live/")

    found = _probe_until_ready(on_b)
    assert found["video"]["width"] == 320 and "audio" in found

    media = on_b.replace("master.m3u8", "media.m3u8")
    status, body, _ = _get(media)
    assert status == 200, body
    playlist = body.decode()
    msn = max(int(n) for n in re.findall(r"^seg(\d+)\.m4s", playlist, re.M))
    status, body, _ = _get(f"{media}?_HLS_msn={msn + 1}&_HLS_part=0")
    assert status == 200, body
    assert f"part{msn + 1}.0.m4s" in body.decode()  # held by A until that part existed

    base = media.rsplit("/", 1)[0]
    init = re.search(r'URI="(init\d+\.mp4)"', playlist)
    assert init is not None
    for name in (init.group(1), f"seg{msn}.m4s", f"part{msn + 1}.0.m4s"):
        via_b = _get(f"{base}/{name}")
        direct = _get(f"{base}/{name}".replace(b.server.base, a.server.base))
        assert via_b[0] == direct[0] == 200, name
        assert via_b[1] == direct[1], name
        assert via_b[2]["Cache-Control"] == "public, max-age=31536000, immutable", name
    assert _get(f"{b.server.base}/live/lse_unknown/master.m3u8")[0] == 404


def test_any_node_plays_rtmp_and_srt_of_a_stream_another_node_carries(
    nodes: Nodes, peers: Peers
) -> None:
    """Publish a private stream to A, play it over RTMP and SRT from B: B relays it
    from A (one upstream for its players) and still wants the playback token."""
    a = nodes.start("node-a")
    b = nodes.start("node-b")
    stream = a.api.create_stream("far-rtmp", playbackPolicy="private")
    sid, key = stream["streamId"], stream["ingest"]["streamKey"]
    peers.start("ffmpeg", ffmpeg_publish(f"{a.rtmp_url}/{key}", 20, size=SMALL, gop=30))
    a.api.wait_media(sid, timeout=10)
    edge = stream["playback"]["edgeId"]
    on_b = f"rtmp://127.0.0.1:{b.rtmp_port}/live/{edge}"
    assert _rtmp_probe(on_b).returncode != 0  # no token
    token = a.api.ok("POST", f"/v1/live-streams/{sid}/playback-tokens", {}, status=201)["token"]
    srt = f"{b.server.srt_url}?streamid=#!::r=live/{edge},m=request,s={token}"
    urls = (f"{on_b}?token={token}", f"{on_b}?token={token}", srt)
    players = [peers.start(f"ffprobe{i}", _probe_args(url)) for i, url in enumerate(urls)]
    for player in players:
        assert player.wait(30) == 0, player.output()
        found = {s["codec_type"]: s for s in json.loads(player.output())["streams"]}
        assert found["video"]["width"] == 320 and "audio" in found
    wait_for(
        lambda: [r["reason"] for r in b.api.ok("GET", "/v1/ingest/failures")["failures"]],
        lambda reasons: reasons == ["playback-token"],
        timeout=5,
        what="B to have refused the player without a token",
    )


def _probe_args(url: str) -> list[str]:
    return [
        require_program("ffprobe"),
        *("-v", "error", "-rw_timeout", "10000000", "-read_intervals", "%+#12"),
        *("-show_entries", "stream=codec_type,width", "-of", "json", url),
    ]


def _rtmp_probe(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_probe_args(url), capture_output=True, text=True, timeout=30)


def _status(url: str) -> int:
    try:
        return _get(url, 1)[0]
    except urllib.error.URLError:
        return 0


EDGE_CONF = Path(__file__).parents[2] / "configs" / "edge-nginx.conf"


def _edge_conf(prefix: Path, port: int, nodes: list[str]) -> str:
    """configs/edge-nginx.conf with the lines marked "(test)" pointed at this test."""
    text = EDGE_CONF.read_text()
    marked = {
        "server 127.0.0.1:8080 max_fails=2 fail_timeout=5s;  # (test) node": "".join(
            f"server {node.removeprefix('http://')} max_fails=2 fail_timeout=5s;\n"
            for node in nodes
        ),
        "/var/cache/nginx/relaycast ": f"{prefix}/cache ",
        "listen 80;  # (test) listen": f"listen 127.0.0.1:{port};",
        "worker_processes auto;": (
            f"daemon off;\nmaster_process off;\npid {prefix}/nginx.pid;\n"
            f"error_log {prefix}/error.log info;"
        ),
        "http {": (
            f"http {{\n    access_log off;\n    proxy_temp_path {prefix}/proxy;\n"
            f"    client_body_temp_path {prefix}/body;"
        ),
    }
    for old, new in marked.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def test_the_nginx_edge_caches_segments_and_passes_playlists(
    nodes: Nodes, peers: Peers, tmp_path: Path
) -> None:
    """configs/edge-nginx.conf in front of two nodes, the stream on A: ffprobe plays
    through it; a segment's second request is a cache hit, playlists never are."""
    a = nodes.start("node-a")
    b = nodes.start("node-b")
    prefix = tmp_path / "edge"
    prefix.mkdir()
    port = _free_port(socket.SOCK_STREAM)
    (prefix / "nginx.conf").write_text(_edge_conf(prefix, port, [b.server.base, a.server.base]))
    cmd = ["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", "stderr"]
    edge = peers.start("nginx", cmd, limit=60)
    edge_base = f"http://127.0.0.1:{port}"
    wait_for(lambda: _status(edge_base + "/healthz"), lambda s: s == 200, 5, "nginx up", every=0.1)

    stream = a.api.create_stream("edge", reconnectWindowSeconds=0)
    key = stream["ingest"]["streamKey"]
    peers.start("ffmpeg", ffmpeg_publish(f"{a.rtmp_url}/{key}", 20, size=SMALL))
    a.api.wait_media(stream["streamId"], timeout=10)
    master = stream["playback"]["hlsUrl"].replace(a.server.base, edge_base)
    assert _probe_until_ready(master)["video"]["width"] == 320

    media = master.replace("master.m3u8", "media.m3u8")
    status, body, headers = _get(media)
    assert (status, headers["X-Cache-Status"]) == (200, "BYPASS"), body
    msn = max(int(n) for n in re.findall(r"^seg(\d+)\.m4s", body.decode(), re.M))
    status, body, headers = _get(f"{media}?_HLS_msn={msn + 1}&_HLS_part=0")
    assert (status, headers["X-Cache-Status"]) == (200, "BYPASS"), body
    assert f"part{msn + 1}.0.m4s" in body.decode()

    base = media.rsplit("/", 1)[0]
    for name in (f"seg{msn}.m4s", f"part{msn + 1}.0.m4s"):
        first, second = _get(f"{base}/{name}"), _get(f"{base}/{name}")
        assert first[0] == second[0] == 200, name
        assert second[2]["X-Cache-Status"] == "HIT", (name, first[2], second[2])
        assert first[1] == second[1], name
    assert edge.running()


def _ffmpeg_play(url: str, seconds: int) -> list[str]:
    return [
        require_program("ffmpeg"),
        *("-v", "error", "-rw_timeout", "10000000", "-i", url, "-t", str(seconds)),
        *("-f", "null", "-"),
    ]


async def _whep_frames(url: str, frames: int, seconds: float) -> tuple[int, dict[str, int]]:
    viewer = WhepViewer(url)
    try:
        answer = await viewer.start(audio=False)
        deadline = time.monotonic() + seconds
        while answer.status == 201 and time.monotonic() < deadline:
            if viewer.frames["video"] >= frames:
                break
            await asyncio.sleep(0.2)
        return answer.status, dict(viewer.frames)
    finally:
        await viewer.close()


def test_health_whep_and_viewers_of_a_stream_another_node_carries(
    nodes: Nodes, peers: Peers
) -> None:
    """The encoder on A; B's API shows its health, B plays it over WHEP (relayed from
    A), and A's figures count the players B relays it to."""
    a = nodes.start("node-a")
    b = nodes.start("node-b")
    stream = a.api.create_stream("far-health", reconnectWindowSeconds=0)
    sid, key = stream["streamId"], stream["ingest"]["streamKey"]
    edge = stream["playback"]["edgeId"]
    peers.start("ffmpeg", ffmpeg_publish(f"{a.rtmp_url}/{key}", 25, size=SMALL, gop=30))
    a.api.wait_media(sid, timeout=10)

    ingest = b.api.health(sid)["ingest"]
    assert ingest is not None and ingest["protocol"] == "rtmp", ingest
    assert ingest["video"]["width"] == 320, ingest

    status, frames = asyncio.run(_whep_frames(f"{b.server.base}/whep/{edge}", 30, 15))
    assert status == 201 and frames["video"] >= 30, (status, frames)

    player = peers.start(
        "ffmpeg-play", _ffmpeg_play(f"rtmp://127.0.0.1:{b.rtmp_port}/live/{edge}", 8)
    )
    now = wait_for(
        lambda: a.api.ok("GET", f"/v1/live-streams/{sid}/viewership")["current"],
        lambda current: current["rtmp"] == 1,
        timeout=8,
        what="A to count the RTMP player B relays its stream to",
    )
    assert now["total"] >= 1
    on_b_figures = b.api.ok("GET", f"/v1/live-streams/{sid}/viewership")  # asked of A
    assert on_b_figures["current"]["rtmp"] == 1, on_b_figures
    assert player.wait(30) == 0, player.output()
    a.api.wait_state(sid, "ended", timeout=30)
    session = wait_for(
        lambda: a.api.sessions(sid)["sessions"][0],
        lambda s: s.get("peakViewers", 0) >= 1 and s.get("viewerSeconds", 0) >= 5,
        timeout=10,
        what="the session's figures to count B's players",
    )
    assert session["peakViewers"] >= 1, session
