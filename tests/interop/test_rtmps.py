"""RTMPS: TLS ingest with a self-signed certificate, published to by ffmpeg."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import require_program
from tests.interop.conftest import Peers, Relaycast, ffmpeg_publish, launch_relaycast
from tests.tls import self_signed

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def relaycast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relaycast]:
    certs = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(certs)
    env = {
        "RELAYCAST_RTMPS__CERT": str(cert),
        "RELAYCAST_RTMPS__KEY": str(key),
        "RELAYCAST_RTMPS__PORT": "0",
    }
    running = launch_relaycast(tmp_path_factory.mktemp("relaycast"), env)
    try:
        yield running
    finally:
        running.server.stop()


def test_ffmpeg_publishes_over_rtmps(relaycast: Relaycast, peers: Peers) -> None:
    rtmps = relaycast.server.rtmps_url
    assert rtmps and rtmps.startswith("rtmps://127.0.0.1:"), relaycast.log()
    assert not rtmps.endswith(":0/live")
    stream = relaycast.api.create_stream("tls", reconnectWindowSeconds=1)
    sid, key = stream["streamId"], stream["ingest"]["streamKey"]
    assert stream["ingest"]["rtmpsUrl"] == rtmps
    assert relaycast.api.stream(sid)["ingest"]["rtmpsUrl"] == rtmps

    publisher = peers.start("ffmpeg-rtmps", ffmpeg_publish(f"{rtmps}/{key}", 4, size="320x180"))
    health = relaycast.api.wait_media(sid, timeout=10)
    ingest = health["ingest"]
    assert ingest["protocol"] == "rtmps"
    video = ingest["video"]
    assert (video["codec"], video["width"], video["height"]) == ("h264", 320, 180)
    assert ingest["audio"]["codec"] == "aac"
    assert ingest["bitrate"] > 0
    assert publisher.wait(15) == 0, publisher.output()

    relaycast.api.wait_state(sid, "ended", timeout=6)
    session = relaycast.api.sessions(sid)["sessions"][0]
    assert session["protocol"] == "rtmps" and session["bytesIn"] > 0

    rotated = relaycast.api.ok("POST", f"/v1/live-streams/{sid}/rotate-key")
    assert rotated["rtmpsFullUrl"] == f"{rtmps}/{rotated['streamKey']}"


def test_plain_rtmp_on_the_tls_port_is_dropped(relaycast: Relaycast, peers: Peers) -> None:
    """An encoder configured with rtmp:// against the RTMPS port fails fast, no stream."""
    rtmps = relaycast.server.rtmps_url
    assert rtmps
    stream = relaycast.api.create_stream("wrong-scheme")
    plain = "rtmp://" + rtmps.split("://", 1)[1] + "/" + stream["ingest"]["streamKey"]
    publisher = peers.start("ffmpeg-plain", ffmpeg_publish(plain, 3, size="320x180"))
    assert publisher.wait(10) != 0
    assert relaycast.api.state(stream["streamId"]) == "idle"


def test_ffprobe_plays_over_rtmps(relaycast: Relaycast, peers: Peers) -> None:
    rtmps = relaycast.server.rtmps_url
    assert rtmps, relaycast.log()
    stream = relaycast.api.create_stream("tls-play")
    peers.start("publisher", ffmpeg_publish(relaycast.publish_url(stream), 20, size="320x180"))
    relaycast.api.wait_state(stream["streamId"], "live", timeout=20)
    out = subprocess.run(
        [
            require_program("ffprobe"),
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name",
            "-of",
            "json",
            f"{rtmps}/{stream['playback']['edgeId']}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    kinds = {s["codec_type"]: s["codec_name"] for s in json.loads(out.stdout)["streams"]}
    assert kinds == {"video": "h264", "audio": "aac"}
