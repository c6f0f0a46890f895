"""Playback over RTMP (and SRT) of a live publish, pulled by real players: ffprobe,
ffmpeg, nginx-rtmp. Players are bus readers: late joiners start at a keyframe with
the codec configuration, and a player that never reads slows no one."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import av
import pytest

from tests.conftest import require_program
from tests.interop.conftest import (
    Peer,
    Peers,
    Relaycast,
    StartRelaycast,
    ffmpeg_publish,
    pyav_publish,
    wait_for,
)
from tests.interop.test_multistream import RTMP_MODULE, accepts, free_port, require_module

pytestmark = pytest.mark.interop


def _rtmp(relaycast: Relaycast, edge_id: str, token: str | None = None) -> str:
    url = f"rtmp://127.0.0.1:{relaycast.rtmp_port}/live/{edge_id}"
    return f"{url}?token={token}" if token else url


def _live(relaycast: Relaycast, peers: Peers, seconds: float = 40, **fields: Any) -> dict[str, Any]:
    stream = relaycast.api.create_stream("play", **fields)
    peers.start(
        "publisher",
        ffmpeg_publish(relaycast.publish_url(stream), seconds, gop=30),
        limit=seconds + 20,
    )
    relaycast.api.wait_state(stream["streamId"], "live", timeout=20)
    time.sleep(1.5)  # a GOP in the cache, so a joiner has a keyframe to start at
    return stream


def _probe(url: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """ffprobe reads a few packets of each track (decoding them: -show_frames)."""
    return subprocess.run(
        [
            require_program("ffprobe"),
            "-v",
            "error",
            "-rw_timeout",
            "10000000",
            "-read_intervals",
            "%+#12",
            "-show_entries",
            "stream=codec_type,codec_name,width,height:frame=media_type,key_frame",
            "-show_frames",
            "-of",
            "json",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _tracks(out: subprocess.CompletedProcess[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    return {s["codec_type"]: s for s in doc["streams"]}, doc.get("frames", [])


def test_ffprobe_pulls_over_rtmp_and_decodes_both_tracks(
    relaycast: Relaycast, peers: Peers
) -> None:
    stream = _live(relaycast, peers)
    streams, frames = _tracks(_probe(_rtmp(relaycast, stream["playback"]["edgeId"])))
    assert streams["video"]["codec_name"] == "h264"
    assert (streams["video"]["width"], streams["video"]["height"]) == (640, 360)
    assert streams["audio"]["codec_name"] == "aac"
    video = [f for f in frames if f["media_type"] == "video"]
    assert {f["media_type"] for f in frames} == {"video", "audio"}
    assert video and video[0]["key_frame"] == 1  # a late joiner starts at a keyframe


def test_unknown_edge_is_refused_with_a_status(relaycast: Relaycast) -> None:
    out = _probe(_rtmp(relaycast, "nosuchedge"))
    assert out.returncode != 0
    failures = relaycast.api.ok("GET", "/v1/ingest/failures")["failures"]
    assert any(f["reason"] == "stream-not-live" for f in failures)


def test_private_stream_needs_a_playback_token(relaycast: Relaycast, peers: Peers) -> None:
    stream = _live(relaycast, peers, playbackPolicy="private")
    edge = stream["playback"]["edgeId"]
    assert _probe(_rtmp(relaycast, edge)).returncode != 0
    assert _probe(_rtmp(relaycast, edge, "123.bogus")).returncode != 0
    token = relaycast.api.ok(
        "POST", f"/v1/live-streams/{stream['streamId']}/playback-tokens", {}, status=201
    )["token"]
    streams, _ = _tracks(_probe(_rtmp(relaycast, edge, token)))
    assert {"video", "audio"} <= set(streams)
    failures = relaycast.api.ok("GET", "/v1/ingest/failures")["failures"]
    assert sum(f["reason"] == "playback-token" for f in failures) >= 2


@pytest.mark.serial
@pytest.mark.solo
def test_twenty_players_at_once(relaycast: Relaycast, peers: Peers) -> None:
    stream = _live(relaycast, peers)
    url = _rtmp(relaycast, stream["playback"]["edgeId"])
    ffmpeg = require_program("ffmpeg")
    players = [
        peers.start(
            f"player{i}",
            [
                ffmpeg,
                "-nostdin",
                "-v",
                "error",
                "-rw_timeout",
                "10000000",
                "-i",
                url,
                "-t",
                "4",
                "-f",
                "null",
                "-",
            ],
            limit=60,
        )
        for i in range(20)
    ]
    for player in players:
        assert player.wait(60) == 0, player.output()


@pytest.mark.serial
@pytest.mark.solo
def test_a_player_that_never_reads_slows_no_one(
    start_relaycast: StartRelaycast, peers: Peers
) -> None:
    """Small player queue and socket buffer, long stall timeout: the stuck player's
    reader must drop frames (counted) while the publisher and a new player go on."""
    relaycast = start_relaycast(
        env={
            "RELAYCAST_PLAYBACK__QUEUE_MAX_FRAMES": "64",
            "RELAYCAST_PLAYBACK__WRITE_BUFFER_BYTES": "16384",
            "RELAYCAST_PLAYBACK__STALL_TIMEOUT": "60",
        }
    )
    stream = _live(relaycast, peers)
    stream_id, edge = stream["streamId"], stream["playback"]["edgeId"]
    stuck = _stuck_player(relaycast.rtmp_port, edge)
    try:
        dropped = wait_for(
            lambda: _play_drops(relaycast, stream_id),
            lambda n: n > 0,
            20,
            "the stuck player's reader to drop frames",
        )
        started = time.monotonic()
        streams, frames = _tracks(_probe(_rtmp(relaycast, edge)))
        assert {"video", "audio"} <= set(streams)
        assert next(f for f in frames if f["media_type"] == "video")["key_frame"] == 1
        assert time.monotonic() - started < 10
        health = relaycast.api.health(stream_id)
        assert health["state"] == "live" and health["ingest"]["bitrate"] > 0
        viewers = relaycast.api.ok("GET", f"/v1/live-streams/{stream_id}/viewership")
        assert viewers["current"]["rtmp"] >= 1  # the stuck one is still connected
        assert _play_drops(relaycast, stream_id) >= dropped
    finally:
        stuck.close()


def _play_drops(relaycast: Relaycast, stream_id: str) -> float:
    text = urllib.request.urlopen(f"{relaycast.server.base}/metrics", timeout=10).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("relaycast_bus_frames_dropped_total{") and (
            'reader_kind="play"' in line and f'stream_id="{stream_id}"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _stuck_player(port: int, edge_id: str) -> socket.socket:
    """An RTMP player on the project's own client core that plays, then never reads."""
    from server.protocols.rtmp import amf0
    from server.protocols.rtmp.chunk import encode_message

    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(b"\x03" + bytes(1536))
    answer = b""
    while len(answer) < 1 + 2 * 1536:
        chunk = sock.recv(4096)
        assert chunk, "server hung up during the handshake"
        answer += chunk
    sock.sendall(answer[1 : 1 + 1536])  # C2 echoes S1
    tc_url = f"rtmp://127.0.0.1:{port}/live"
    for tid, name, obj, args in (
        (1.0, "connect", {"app": "live", "tcUrl": tc_url}, ()),
        (2.0, "createStream", None, ()),
        (3.0, "play", None, (edge_id,)),
    ):
        payload = amf0.encode_values(name, tid, obj, *args)
        sock.sendall(encode_message(3, 20, 1 if name == "play" else 0, 0, payload, 128))
        time.sleep(0.2)
    return sock


# ------------------------------------------------------------------ SRT


def _srt(relaycast: Relaycast, edge_id: str, extra: str = "") -> str:
    base = relaycast.server.srt_url
    assert base, relaycast.log()
    return f"{base}?streamid=#!::r=live/{edge_id},m=request{extra}"


@pytest.mark.parametrize("passphrase", [None, "playback-pass-1"])
def test_ffprobe_pulls_over_srt_and_decodes_both_tracks(
    relaycast: Relaycast, peers: Peers, passphrase: str | None
) -> None:
    fields = {"srtPassphrase": passphrase} if passphrase else {}
    stream = _live(relaycast, peers, **fields)
    edge = stream["playback"]["edgeId"]
    extra = f"&passphrase={passphrase}" if passphrase else ""
    streams, frames = _tracks(_probe(_srt(relaycast, edge, extra)))
    assert streams["video"]["codec_name"] == "h264"
    assert streams["audio"]["codec_name"] == "aac"
    assert {f["media_type"] for f in frames} == {"video", "audio"}
    video = [f for f in frames if f["media_type"] == "video"]
    assert video[0]["key_frame"] == 1
    if passphrase:
        assert _probe(_srt(relaycast, edge), timeout=30).returncode != 0


def test_private_stream_over_srt_needs_the_token_in_s(relaycast: Relaycast, peers: Peers) -> None:
    stream = _live(relaycast, peers, playbackPolicy="private")
    edge = stream["playback"]["edgeId"]
    assert _probe(_srt(relaycast, edge)).returncode != 0
    token = relaycast.api.ok(
        "POST", f"/v1/live-streams/{stream['streamId']}/playback-tokens", {}, status=201
    )["token"]
    streams, _ = _tracks(_probe(_srt(relaycast, edge, f",s={token}")))
    assert {"video", "audio"} <= set(streams)


# ------------------------------------------------------------------ viewers

PLAN_OF_THREE = json.dumps(
    {
        "standard": {
            "max_clients": 3,
            "max_resolution": {"width": 1920, "height": 1080},
            "max_frame_rate": 60,
            "max_bitrate": 8_000_000,
        }
    }
)


def _hls_viewer(url: str, agent: str) -> int:
    request = urllib.request.Request(url, headers={"User-Agent": agent})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code


def _player(peers: Peers, name: str, url: str, seconds: int = 30) -> Peer:
    ffmpeg = require_program("ffmpeg")
    command = [ffmpeg, "-nostdin", "-v", "error", "-rw_timeout", "10000000", "-i", url]
    return peers.start(name, [*command, "-t", str(seconds), "-f", "null", "-"], limit=seconds + 30)


def test_max_clients_counts_every_protocol_and_viewership_shows_them(
    start_relaycast: StartRelaycast, peers: Peers
) -> None:
    relaycast = start_relaycast(env={"RELAYCAST_PLANS": PLAN_OF_THREE})
    stream = _live(relaycast, peers, seconds=60)
    stream_id, edge = stream["streamId"], stream["playback"]["edgeId"]
    hls = stream["playback"]["hlsUrl"]
    assert wait_for(lambda: _hls_viewer(hls, "viewer-1"), lambda s: s == 200, 20, "HLS") == 200
    _player(peers, "rtmp-viewer", _rtmp(relaycast, edge))
    _player(peers, "srt-viewer", _srt(relaycast, edge))
    path = f"/v1/live-streams/{stream_id}/viewership"
    seen = wait_for(
        lambda: relaycast.api.ok("GET", path),
        lambda v: v["current"] == {"hls": 1, "rtmp": 1, "srt": 1, "webrtc": 0, "total": 3},
        20,
        "three viewers, one per protocol",
    )
    assert seen["peakViewers"] == 3 and seen["totalViews"] >= 3
    # the 4th viewer is refused on any protocol
    assert _probe(_rtmp(relaycast, edge)).returncode != 0
    assert _probe(_srt(relaycast, edge)).returncode != 0
    assert _hls_viewer(hls, "viewer-2") == 429
    failures = relaycast.api.ok("GET", "/v1/ingest/failures")["failures"]
    assert {f["protocol"] for f in failures if f["reason"] == "max-clients"} == {"rtmp", "srt"}
    metrics = urllib.request.urlopen(f"{relaycast.server.base}/metrics", timeout=10).read()
    assert f'relaycast_viewers{{protocol="rtmp",stream_id="{stream_id}"}} 1.0'.encode() in metrics
    time.sleep(2)
    live = relaycast.api.sessions(stream_id)["sessions"][0]
    assert live["peakViewers"] == 3 and live["viewerSeconds"] > 2
    relaycast.api.ok("POST", f"/v1/live-streams/{stream_id}/stop")
    ended = wait_for(
        lambda: relaycast.api.sessions(stream_id)["sessions"][0],
        lambda s: s["endedAt"] is not None and s["peakViewers"] == 3,
        20,
        "the ended session to keep its audience",
    )
    assert ended["viewerSeconds"] >= live["viewerSeconds"]
    after = relaycast.api.ok("GET", path)
    assert after["current"]["total"] == 0 and after["peakViewers"] == 3


# ------------------------------------------------------------------ nginx-rtmp pulls from us


def test_nginx_rtmp_pulls_from_us_and_re_serves_it(
    relaycast: Relaycast, peers: Peers, tmp_path: Path
) -> None:
    require_module(RTMP_MODULE, "libnginx-mod-rtmp")
    stream = _live(relaycast, peers)
    edge = stream["playback"]["edgeId"]
    port = free_port()
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"load_module {RTMP_MODULE};\ndaemon off;\nmaster_process off;\n"
        f"pid {prefix}/nginx.pid;\nerror_log {prefix}/error.log info;\n"
        "events { worker_connections 64; }\n"
        f"rtmp {{\n  server {{\n    listen 127.0.0.1:{port};\n"
        "    application relay {\n      live on;\n"
        f"      pull rtmp://127.0.0.1:{relaycast.rtmp_port}/live;\n    }}\n  }}\n}}\n"
    )
    cmd = ["nginx", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    nginx = peers.start("nginx", cmd, limit=90)
    wait_for(lambda: nginx.running() and accepts(port), bool, 5, "nginx-rtmp to listen")
    streams, frames = _tracks(_probe(f"rtmp://127.0.0.1:{port}/relay/{edge}"))
    assert streams["video"]["codec_name"] == "h264" and streams["audio"]["codec_name"] == "aac"
    assert {f["media_type"] for f in frames} == {"video", "audio"}
    viewers = relaycast.api.ok("GET", f"/v1/live-streams/{stream['streamId']}/viewership")
    assert viewers["totalViews"] >= 1  # nginx was our RTMP player


# ------------------------------------------------------------------ Enhanced RTMP


def test_hevc_goes_only_to_an_enhanced_rtmp_player(relaycast: Relaycast, peers: Peers) -> None:
    """ffmpeg 5.1 lists no FourCCs in connect: refused with the reason; PyAV's FFmpeg 8
    with ``rtmp_enhanced_codecs`` lists them and decodes the HEVC it is sent."""
    if "libx265" not in av.codecs_available:
        message = "PyAV's bundled FFmpeg has no libx265"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    stream = relaycast.api.create_stream("hevc-play")
    args = ["--codec", "libx265", "--size", "320x180", "--fps", "25", "--gop", "25"]
    args += ["--seconds", "30", "--enhanced-codecs", "hvc1"]
    peers.start("pyav", pyav_publish(relaycast.publish_url(stream), *args), limit=60)
    relaycast.api.wait_media(stream["streamId"], timeout=15)
    url = _rtmp(relaycast, stream["playback"]["edgeId"])
    assert _probe(url).returncode != 0
    failures = relaycast.api.ok("GET", "/v1/ingest/failures")["failures"]
    assert any(f["reason"] == "codec-unsupported" for f in failures)
    options = {"rtmp_enhanced_codecs": "hvc1,mp4a", "rw_timeout": "10000000"}
    with av.open(url, options=options, timeout=20) as container:
        video = container.streams.video[0]
        assert video.codec_context.name == "hevc"
        decoded = 0
        for _frame in container.decode(video):
            decoded += 1
            if decoded == 10:
                break
    assert decoded == 10
