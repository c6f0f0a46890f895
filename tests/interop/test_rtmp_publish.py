"""Real encoders publishing over RTMP: ffmpeg 5.1, GStreamer (librtmp and rtmp2), PyAV's
FFmpeg 8 with Enhanced RTMP (HEVC, AV1, VP9), and what the API reports about them."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import av
import pytest

from server.protocols import rtmp
from tests.conftest import require_program
from tests.interop.conftest import (
    BareRtmpPublisher,
    Peers,
    Relaycast,
    ffmpeg_publish,
    pyav_publish,
    require_gst_element,
    wait_for,
)

pytestmark = pytest.mark.interop


def _observe_until_live(relaycast: Relaycast, stream_id: str, timeout: float) -> list[str]:
    """Poll fast and return the distinct states seen, in order, up to ``live``."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = relaycast.api.state(stream_id)
        if not seen or seen[-1] != state:
            seen.append(state)
        if state == "live":
            return seen
        time.sleep(0.02)
    pytest.fail(f"stream never went live; states seen: {seen}\n{relaycast.log()[-3000:]}")


def test_ffmpeg_h264_aac_lifecycle_health_and_session(relaycast: Relaycast, peers: Peers) -> None:
    stream = relaycast.api.create_stream("ffmpeg", reconnectWindowSeconds=2)
    sid = stream["streamId"]
    assert stream["state"] == "idle"
    assert stream["ingest"]["rtmpUrl"] == relaycast.rtmp_url
    assert stream["ingest"]["rtmpFullUrl"] == relaycast.publish_url(stream)
    ffmpeg = peers.start(
        "ffmpeg",
        ffmpeg_publish(relaycast.publish_url(stream), 5, sample_rate=44100, channels=2),
    )

    states = _observe_until_live(relaycast, sid, timeout=10)
    assert states[-1] == "live"
    assert set(states) <= {"idle", "connecting", "live"}, states
    assert states == sorted(states, key=["idle", "connecting", "live"].index), states

    health = relaycast.api.wait_media(sid, timeout=6)
    ingest = health["ingest"]
    assert ingest["protocol"] == "rtmp"
    assert ingest["remoteAddress"].startswith("127.0.0.1:")
    assert ingest["bitrate"] > 0 and ingest["bytesIn"] > 0
    video, audio = ingest["video"], ingest["audio"]
    assert (video["codec"], video["width"], video["height"]) == ("h264", 640, 360)
    assert video["fps"] == pytest.approx(30, abs=1.5)
    assert video["keyframeInterval"] == pytest.approx(2.0, abs=0.1)
    assert audio == {"codec": "aac", "sampleRate": 44100, "channels": 2}
    assert ingest["framesDropped"] == 0

    live = relaycast.api.stream(sid)
    assert live["startedAt"] and live.get("endedAt") is None
    during = relaycast.api.sessions(sid)
    assert during["total"] == 1
    session = during["sessions"][0]
    assert session["sessionId"] == ingest["sessionId"]
    assert session["protocol"] == "rtmp" and session.get("endedAt") is None

    assert ffmpeg.wait(15) == 0, ffmpeg.output()
    # The encoder is gone, but the stream waits reconnectWindowSeconds for it.
    gone = relaycast.api.health(sid)
    assert gone["state"] == "live"
    away = gone["ingest"]  # the last figures stay, marked as away
    assert away["encoderConnected"] is False and away["encoderLeftAt"]
    assert away["sessionId"] == ingest["sessionId"] and away["bytesIn"] >= ingest["bytesIn"]
    assert away["video"]["codec"] == "h264"

    ended = relaycast.api.wait_state(sid, "ended", timeout=8)
    assert ended["endedAt"] and ended["startedAt"]
    after = relaycast.api.sessions(sid)
    assert after["total"] == 1
    done = after["sessions"][0]
    assert done["sessionId"] == session["sessionId"]
    assert done["endedAt"] is not None
    assert done["durationSeconds"] > 4
    assert done["bytesIn"] >= ingest["bytesIn"] > 0
    assert relaycast.api.ok("GET", f"/v1/sessions/{done['sessionId']}") == done


def test_ffmpeg_timestamps_across_the_extended_timestamp_boundary(
    relaycast: Relaycast, peers: Peers
) -> None:
    """Timestamps start just below 0xFFFFFF ms and cross it after ~1 s: from then on
    ffmpeg writes extended timestamps (on every fmt-3 chunk too). The measured frame
    rate and keyframe interval span the boundary, so a misread would show."""
    stream = relaycast.api.create_stream("extended-ts", reconnectWindowSeconds=1)
    sid = stream["streamId"]
    offset = ["-output_ts_offset", str(0xFFFFFF // 1000 - 1)]  # 16776 s
    ffmpeg = peers.start(
        "ffmpeg-ts",
        ffmpeg_publish(relaycast.publish_url(stream), 4, size="320x180", output_args=offset),
    )
    health = relaycast.api.wait_media(sid, timeout=10)
    video = health["ingest"]["video"]
    assert video["fps"] == pytest.approx(30, abs=1.5)
    assert video["keyframeInterval"] == pytest.approx(2.0, abs=0.1)
    assert ffmpeg.wait(15) == 0, ffmpeg.output()
    relaycast.api.wait_state(sid, "ended", timeout=6)
    assert f"rtmp {health['ingest']['remoteAddress']}" not in relaycast.log()  # no warnings


def test_connecting_until_first_media(relaycast: Relaycast) -> None:
    """Authenticated but no media yet: ``connecting``, with ingest health but no codecs."""
    stream = relaycast.api.create_stream("bare", reconnectWindowSeconds=2)
    sid = stream["streamId"]
    bare = BareRtmpPublisher(relaycast.rtmp_url, stream["ingest"]["streamKey"])
    try:
        answer = bare.publish()
        assert isinstance(answer, rtmp.PublishStarted), bare.events
        health = relaycast.api.wait_health(
            sid, lambda h: h["state"] == "connecting", timeout=5, what="connecting"
        )
        assert health["ingest"]["protocol"] == "rtmp"
        assert health["ingest"].get("video") is None and health["ingest"].get("audio") is None
    finally:
        bare.close()
    # It never went live, so there is nothing to wait for: the session ends at once.
    relaycast.api.wait_state(sid, "ended", timeout=5)
    sessions = relaycast.api.sessions(sid)
    assert sessions["total"] == 1 and sessions["sessions"][0]["endedAt"] is not None


GST_SOURCE = (
    "videotestsrc is-live=true num-buffers={frames} ! video/x-raw,width=320,height=180,"
    "framerate=25/1 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=50 ! "
    "h264parse ! queue ! mux. "
    "audiotestsrc is-live=true num-buffers={blocks} ! audioconvert ! voaacenc ! aacparse ! "
    "queue ! mux. flvmux name=mux streamable=true ! "
)


@pytest.mark.parametrize("sink", ["rtmpsink", "rtmp2sink"])
def test_gstreamer_publishers_go_live(relaycast: Relaycast, peers: Peers, sink: str) -> None:
    """protocols.md §7 tests 9 (librtmp, OBS's library family) and 10 (GStreamer's own)."""
    gst = require_program("gst-launch-1.0")
    for element in ("x264enc", "voaacenc", "flvmux", sink):
        require_gst_element(element)
    stream = relaycast.api.create_stream(sink, reconnectWindowSeconds=1)
    sid = stream["streamId"]
    location = relaycast.publish_url(stream)
    if sink == "rtmpsink":
        location += " live=1"  # librtmp's option syntax
    seconds = 4
    pipeline = GST_SOURCE.format(frames=25 * seconds, blocks=44100 * seconds // 1024)
    cmd = [gst, "-q", *pipeline.split(), sink, f"location={location}"]
    publisher = peers.start(sink, cmd, limit=30)

    health = relaycast.api.wait_media(sid, timeout=8)
    ingest = health["ingest"]
    assert ingest["protocol"] == "rtmp"
    video = ingest["video"]
    assert (video["codec"], video["width"], video["height"]) == ("h264", 320, 180)
    assert video["fps"] == pytest.approx(25, abs=1.5)
    # key-int-max is a maximum and x264enc under load may stretch it: a loose check.
    assert video["keyframeInterval"] == pytest.approx(2.0, abs=0.3)
    assert ingest["audio"]["codec"] == "aac"
    assert ingest["audio"]["sampleRate"] == 44100

    assert publisher.wait(15) == 0, publisher.output()
    relaycast.api.wait_state(sid, "ended", timeout=6)
    sessions = relaycast.api.sessions(sid)
    assert sessions["total"] == 1
    assert sessions["sessions"][0]["bytesIn"] > 0


ENHANCED = "hvc1,av01,vp09"


@pytest.mark.parametrize(
    ("encoder", "codec", "size", "fourcc_list"),
    [
        pytest.param("libx265", "h265", "480x270", None, id="hevc"),
        pytest.param("libx265", "h265", "320x180", ENHANCED, id="hevc-fourcclist"),
        pytest.param("libsvtav1", "av1", "320x180", ENHANCED, id="av1"),
        pytest.param("libvpx-vp9", "vp9", "320x180", ENHANCED, id="vp9"),
    ],
)
def test_pyav_enhanced_rtmp(
    relaycast: Relaycast,
    peers: Peers,
    encoder: str,
    codec: str,
    size: str,
    fourcc_list: str | None,
) -> None:
    """PyAV's FFmpeg 8 writes HEVC/AV1/VP9 as Enhanced RTMP (ExHeader + FourCC) tags;
    with ``rtmp_enhanced_codecs`` it also announces ``fourCcList`` in connect."""
    if encoder not in av.codecs_available:
        message = f"PyAV's bundled FFmpeg has no {encoder}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    stream = relaycast.api.create_stream(codec, reconnectWindowSeconds=1)
    sid = stream["streamId"]
    args = ["--codec", encoder, "--size", size, "--fps", "25", "--gop", "50", "--seconds", "4"]
    if fourcc_list:
        args += ["--enhanced-codecs", fourcc_list]
    publisher = peers.start(encoder, pyav_publish(relaycast.publish_url(stream), *args))

    health = relaycast.api.wait_media(sid, timeout=8)
    width, height = (int(v) for v in size.split("x"))
    video: dict[str, Any] = health["ingest"]["video"]
    assert video["codec"] == codec
    assert (video["width"], video["height"]) == (width, height), video
    assert video["fps"] == pytest.approx(25, abs=1.5)
    assert video["keyframeInterval"] == pytest.approx(2.0, abs=0.1)
    assert health["ingest"]["audio"] == {"codec": "aac", "sampleRate": 48000, "channels": 2}

    assert publisher.wait(20) == 0, publisher.output()
    wait_for(
        lambda: relaycast.api.state(sid),
        lambda s: s == "ended",
        timeout=6,
        what=f"{codec} stream to end",
    )


NGINX_CONF = """\
load_module {module};
daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 64; }}
rtmp {{
  server {{
    listen 127.0.0.1:{port};
    application relay {{
      live on;
      push {target};
    }}
  }}
}}
"""
NGINX_RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_nginx_rtmp_push_relay(relaycast: Relaycast, peers: Peers, tmp_path: Path) -> None:
    """A common deployment: encoders publish to nginx-rtmp, which pushes to relaycast.
    nginx-rtmp's relay is another client implementation (FP9-style handshake)."""
    nginx = require_program("nginx")
    if not NGINX_RTMP_MODULE.exists():
        message = "libnginx-mod-rtmp is not installed (scripts/install-peers.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    stream = relaycast.api.create_stream("nginx", reconnectWindowSeconds=1)
    sid = stream["streamId"]
    port = _free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            module=NGINX_RTMP_MODULE,
            prefix=tmp_path,
            port=port,
            target=relaycast.publish_url(stream),
        )
    )
    relay = peers.start(
        "nginx", [nginx, "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "error.log")]
    )
    wait_for(
        lambda: relay.running() and _accepts(port),
        bool,
        timeout=5,
        what="nginx-rtmp to listen",
    )
    encoder = peers.start(
        # 8 s: under a loaded CI, nginx's relay and ffmpeg's start-up could use up a 4 s
        # publish before health had measured its media (the stream had already ended)
        "ffmpeg",
        ffmpeg_publish(f"rtmp://127.0.0.1:{port}/relay/x", 8, size="320x180"),
    )
    health = relaycast.api.wait_media(sid, timeout=10)
    video = health["ingest"]["video"]
    assert (video["codec"], video["width"], video["height"]) == ("h264", 320, 180)
    assert health["ingest"]["audio"]["codec"] == "aac"
    assert encoder.wait(20) == 0, encoder.output()
    relaycast.api.wait_state(sid, "ended", timeout=6)
    assert relaycast.api.sessions(sid)["total"] == 1
    relay.signal(signal.SIGTERM)
    relay.wait(5)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
