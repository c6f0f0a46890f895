"""Recording with real encoders: ffmpeg over RTMP (with a reconnect), SRT, a kill -9.

Each recording must come out as one media item whose HLS VOD and seekable MP4 both
decode (ffprobe and PyAV), with ``recording.ready`` delivered to a real receiver.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import av
import pytest

from tests.conftest import require_program
from tests.interop.conftest import Api, Peers, Relaycast, StartRelaycast, ffmpeg_publish, wait_for
from tests.interop.test_srt_ingest import ffmpeg_srt
from tests.webhook_receiver import Receiver

# disk- and CPU-heavy: after the parallel phase, two at a time (scripts/test.sh)
pytestmark = [pytest.mark.interop, pytest.mark.serial]

ENV = {
    "RELAYCAST_WEBHOOKS__ALLOW_PRIVATE_TARGETS": "true",
    "RELAYCAST_RECORDING__MIN_FREE_BYTES": "0",
}


def _recordings(api: Api) -> list[dict[str, Any]]:
    items = api.ok("GET", "/v1/media?limit=100")["media"]
    return [m for m in items if m["source"] == "recording"]


def _ffprobe(url: str) -> dict[str, Any]:
    out = subprocess.run(
        [
            require_program("ffprobe"),
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type:format=duration",
            "-of",
            "json",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def _decode(url: str) -> tuple[int, int]:
    """Video and audio frames PyAV decodes from the whole of ``url``."""
    video = audio = 0
    with av.open(url, timeout=20) as container:
        streams = [container.streams.video[0], container.streams.audio[0]]
        for frame in container.decode(*streams):
            if isinstance(frame, av.VideoFrame):
                video += 1
            else:
                audio += 1
    return video, audio


def _check_playable(item: dict[str, Any], seconds: float, tolerance: float, fps: int = 30) -> None:
    assert item["status"] == "ready", item
    assert abs(item["durationSeconds"] - seconds) <= tolerance, item
    for url in (item["playback"]["hlsUrl"], item["playback"]["mp4Url"]):
        probed = _ffprobe(url)
        assert {s["codec_type"] for s in probed["streams"]} == {"video", "audio"}, url
        video, audio = _decode(url)
        assert video >= (seconds - tolerance) * fps, (url, video)
        assert audio >= (seconds - tolerance) * 46, (url, audio)  # 48 kHz AAC: 46.9/s


def _hook(api: Api, url: str) -> None:
    api.ok("POST", "/v1/webhooks", {"url": url, "events": ["recording.ready"]}, status=201)


def _wait_ready(api: Api, count: int = 1, timeout: float = 40) -> list[dict[str, Any]]:
    return wait_for(
        lambda: _recordings(api),
        lambda items: len(items) >= count and all(m["status"] != "processing" for m in items),
        timeout,
        "the recording to be ready",
        every=0.5,
    )


def test_rtmp_recording_with_a_reconnect_is_one_playable_media_item(
    start_relaycast: StartRelaycast, peers: Peers, tmp_path: Path
) -> None:
    relaycast = start_relaycast(env=ENV)
    api = relaycast.api
    with Receiver() as receiver:
        _hook(api, receiver.url)
        stream = api.create_stream(
            "show", recording=True, reconnectWindowSeconds=2, playbackPolicy="public"
        )
        for _ in range(2):  # the second encoder comes back inside the window
            ffmpeg = peers.start("ffmpeg", ffmpeg_publish(relaycast.publish_url(stream), 6))
            assert ffmpeg.wait(30) == 0, ffmpeg.output()
        got = wait_for(receiver.received, lambda r: len(r) >= 1, 40, "recording.ready", every=0.3)
    [item] = _wait_ready(api)
    event = got[0].json
    assert event["type"] == "recording.ready" and event["data"]["mediaId"] == item["mediaId"]
    sessions = api.sessions(stream["streamId"])["sessions"]
    assert len(sessions) == 1, sessions
    assert sessions[0]["recordingMediaId"] == item["mediaId"]
    assert item["streamId"] == stream["streamId"]
    assert item["sessionId"] == sessions[0]["sessionId"]
    assert item["name"].startswith("show ") and item["playbackPolicy"] == "public"
    folder = api.ok("GET", f"/v1/folders/{item['folderId']}")
    assert folder["name"] == "Recordings"
    _check_playable(item, 12, 1.0)
    out = _run_readme_example(relaycast, stream["streamId"], tmp_path)
    assert f'"mediaId":"{item["mediaId"]}"' in out and '"source":"recording"' in out, out


def _run_readme_example(relaycast: Relaycast, stream_id: str, workdir: Path) -> str:
    """The README's recording curl block, as written, against this server."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("<!-- curl-recording -->", 2)[1]
    script = f"cd {workdir}\n" + block.split("```bash", 1)[1].split("```", 1)[0]
    env = {
        "RELAYCAST": relaycast.server.base,
        "KEY": relaycast.api.key,
        "STREAM_ID": stream_id,
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_srt_recording_is_a_playable_media_item(
    start_relaycast: StartRelaycast, peers: Peers
) -> None:
    relaycast = start_relaycast(env=ENV)
    api = relaycast.api
    stream = api.create_stream("srt show", recording=True, reconnectWindowSeconds=0)
    key = stream["ingest"]["streamKey"]
    base = relaycast.server.srt_url
    url = f"{base}?streamid=#!::r=live/{key},m=publish&latency=200000&pkt_size=1316"
    ffmpeg = peers.start("ffmpeg", ffmpeg_srt(url, 5))
    assert ffmpeg.wait(30) == 0, ffmpeg.output()
    [item] = _wait_ready(api)
    assert item["playbackPolicy"] == "public"
    _check_playable(item, 5, 1.0, fps=25)


def test_kill_9_mid_session_and_the_next_start_finishes_the_recording(
    start_relaycast: StartRelaycast, peers: Peers
) -> None:
    relaycast = start_relaycast(env=ENV)
    api = relaycast.api
    stream = api.create_stream("crash", recording=True, playbackPolicy="public")
    ffmpeg = peers.start("ffmpeg", ffmpeg_publish(relaycast.publish_url(stream), 30))
    api.wait_state(stream["streamId"], "live")
    started = time.monotonic()
    time.sleep(6)
    relaycast.server.proc.send_signal(signal.SIGKILL)
    sent = time.monotonic() - started
    relaycast.server.proc.wait(10)
    ffmpeg.kill()
    again = start_relaycast(data_dir=relaycast.data_dir, env=ENV, key=api.key)
    [item] = _wait_ready(again.api)
    assert again.api.state(stream["streamId"]) == "ended"
    [session] = again.api.sessions(stream["streamId"])["sessions"]
    assert session["endedAt"] and session["recordingMediaId"] == item["mediaId"]
    _check_playable(item, sent, 2.0)


def test_too_little_free_space_refuses_the_recording_not_the_stream(
    start_relaycast: StartRelaycast, peers: Peers
) -> None:
    relaycast = start_relaycast(env={**ENV, "RELAYCAST_RECORDING__MIN_FREE_BYTES": str(2**50)})
    api = relaycast.api
    stream = api.create_stream("full", recording=True, reconnectWindowSeconds=0)
    ffmpeg = peers.start("ffmpeg", ffmpeg_publish(relaycast.publish_url(stream), 20))
    health = api.wait_media(stream["streamId"])
    [warning] = health["warnings"]
    assert "recording.min_free_bytes" in warning
    with urllib.request.urlopen(stream["playback"]["hlsUrl"], timeout=10) as resp:
        assert resp.status == 200 and b"#EXT-X-STREAM-INF" in resp.read()
    ffmpeg.kill()
    api.wait_state(stream["streamId"], "ended")
    assert _recordings(api) == []
    assert "recording not started" in relaycast.log()


def test_a_clean_stop_mid_session_keeps_exactly_one_recording(
    start_relaycast: StartRelaycast, peers: Peers
) -> None:
    relaycast = start_relaycast(env=ENV)
    api = relaycast.api
    stream = api.create_stream("stopped", recording=True, playbackPolicy="public")
    ffmpeg = peers.start("ffmpeg", ffmpeg_publish(relaycast.publish_url(stream), 30))
    api.wait_state(stream["streamId"], "live")
    started = time.monotonic()
    time.sleep(4)
    relaycast.server.stop(signal.SIGTERM)
    sent = time.monotonic() - started
    ffmpeg.kill()
    again = start_relaycast(data_dir=relaycast.data_dir, env=ENV, key=api.key)
    [item] = _wait_ready(again.api)
    [session] = again.api.sessions(stream["streamId"])["sessions"]
    assert session["recordingMediaId"] == item["mediaId"]
    _check_playable(item, sent, 2.0)
