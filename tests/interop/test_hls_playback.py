"""HLS playback of a live RTMP publish, read back by ffprobe and PyAV (fMP4/LL and TS)."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from typing import Any

import av
import pytest

from tests.conftest import require_program
from tests.interop.conftest import Peers, Relaycast, StartRelaycast, ffmpeg_publish, wait_for

pytestmark = pytest.mark.interop


def _ffprobe(url: str) -> list[dict[str, Any]] | str:
    """The streams ffprobe finds, or its error text (the playlist may not be ready yet)."""
    out = subprocess.run(
        [
            require_program("ffprobe"),
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,codec_type,width,height,sample_rate",
            "-of",
            "json",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if out.returncode != 0:
        return out.stderr
    return list(json.loads(out.stdout)["streams"])


def _probe_until_ready(url: str) -> dict[str, dict[str, Any]]:
    streams = wait_for(
        lambda: _ffprobe(url),
        lambda v: isinstance(v, list) and {"video", "audio"} <= {s["codec_type"] for s in v},
        20,
        "ffprobe to find video and audio",
    )
    assert isinstance(streams, list)
    return {s["codec_type"]: s for s in streams}


def _decode_with_pyav(url: str, seconds: float) -> tuple[int, int, tuple[int, int]]:
    """Decode ``seconds`` of video and audio; returns frame counts and the picture size."""
    video = audio = 0
    size = (0, 0)
    with av.open(url, timeout=20) as container:
        first = None
        for frame in container.decode(container.streams.video[0], container.streams.audio[0]):
            if isinstance(frame, av.VideoFrame):
                video += 1
                size = (frame.width, frame.height)
                if frame.time is not None:
                    first = frame.time if first is None else first
                    if frame.time - first >= seconds:
                        break
            else:
                audio += 1
    return video, audio, size


def _play(relaycast: Relaycast, peers: Peers, **fields: Any) -> tuple[str, dict[str, Any]]:
    stream = relaycast.api.create_stream("hls", reconnectWindowSeconds=2, **fields)
    peers.start("ffmpeg", ffmpeg_publish(relaycast.publish_url(stream), 25, size="640x360", gop=30))
    relaycast.api.wait_state(stream["streamId"], "live", timeout=20)
    return stream["playback"]["hlsUrl"], stream


def test_ll_hls_fmp4_reads_back_in_ffprobe_and_pyav(relaycast: Relaycast, peers: Peers) -> None:
    url, _ = _play(relaycast, peers, lowLatency=True)
    kinds = _probe_until_ready(url)
    assert kinds["video"]["codec_name"] == "h264"
    assert (kinds["video"]["width"], kinds["video"]["height"]) == (640, 360)
    assert kinds["audio"]["codec_name"] == "aac" and kinds["audio"]["sample_rate"] == "48000"
    video, audio, size = _decode_with_pyav(url, 3.0)
    assert size == (640, 360) and video >= 60 and audio > 50


def test_ffprobe_opened_the_moment_the_api_says_live_finds_both_streams(
    relaycast: Relaycast, peers: Peers
) -> None:
    """One ffprobe, no retry, as a user would open the URL when the stream goes live:
    the playlist had only LL-HLS parts then, and players without LL found no streams."""
    url, _ = _play(relaycast, peers, lowLatency=True)
    streams = _ffprobe(url)
    assert isinstance(streams, list), streams
    assert {s["codec_type"] for s in streams} == {"video", "audio"}


def test_ts_segments_for_old_players(start_relaycast: StartRelaycast, peers: Peers) -> None:
    relaycast = start_relaycast(env={"RELAYCAST_HLS__SEGMENT_FORMAT": "ts"})
    url, _ = _play(relaycast, peers, lowLatency=False)
    media = url.replace("master.m3u8", "media.m3u8")
    playlist = wait_for(lambda: _text(media), lambda t: ".ts" in t, 20, "TS segments listed")
    assert "#EXT-X-PART" not in playlist
    kinds = _probe_until_ready(url)
    assert (kinds["video"]["codec_name"], kinds["audio"]["codec_name"]) == ("h264", "aac")
    video, audio, size = _decode_with_pyav(url, 2.0)
    assert size == (640, 360) and video >= 40 and audio > 30


def _text(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return str(resp.read().decode())
    except urllib.error.HTTPError as err:
        return f"HTTP {err.code}"
