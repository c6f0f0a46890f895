"""Renditions of a live RTMP publish: the ladder in the master playlist, each variant at
its size (ffprobe) and aligned with the source (PyAV reads every variant's segments); a
destination that pushes a rung delivers that rung to nginx-rtmp."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import av
import pytest

from tests.interop.conftest import Peers, Relaycast, ffmpeg_publish, wait_for
from tests.interop.test_hls_playback import _ffprobe
from tests.interop.test_multistream import free_port, probe, start_nginx
from tests.interop.test_recording import _wait_ready

pytestmark = [pytest.mark.interop, pytest.mark.serial]


@pytest.fixture(scope="module")
def relaycast_env() -> dict[str, str]:
    """Room for a stream still ending while the next test's starts (the capacity rule
    itself is tested in tests/unit/transcode)."""
    return {"RELAYCAST_TRANSCODE__MAX_STREAMS": "4", "RELAYCAST_RECORDING__MIN_FREE_BYTES": "0"}


_INF = re.compile(r"#EXT-X-STREAM-INF:(.*)\n(.*)")


def _get(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=15) as resp:
            return bytes(resp.read())
    except urllib.error.HTTPError as err:
        return f"HTTP {err.code}".encode()


def _variants(master: str) -> dict[str, dict[str, str]]:
    """URI -> attributes of each EXT-X-STREAM-INF."""
    out = {}
    for attrs, uri in _INF.findall(master):
        pairs = re.findall(r'([A-Z-]+)=("[^"]*"|[^,]*)', attrs)
        out[uri.strip()] = {k: v.strip('"') for k, v in pairs}
    return out


def _publish(relaycast: Relaycast, peers: Peers, size: str, quality: str) -> dict[str, Any]:
    stream = relaycast.api.create_stream(
        "abr", quality=quality, lowLatency=True, reconnectWindowSeconds=0
    )
    url = relaycast.publish_url(stream)
    peers.start("ffmpeg", ffmpeg_publish(url, 14, size=size, fps=25, gop=25))
    relaycast.api.wait_state(stream["streamId"], "live", timeout=20)
    return stream


def _segment_starts(base: str, uri: str) -> dict[int, tuple[float, bool]]:
    """Segment MSN -> (first video PTS in seconds, starts with a keyframe)."""
    playlist = _get(base + uri).decode()
    directory = base + uri.rsplit("/", 1)[0] + "/" if "/" in uri else base
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', playlist)
    assert init is not None, playlist
    header = _get(directory + init.group(1))
    out = {}
    for name in re.findall(r"^(seg(\d+)\.m4s)$", playlist, re.M):
        data = header + _get(directory + name[0])
        with av.open(io.BytesIO(data), format="mp4") as container:
            stream = container.streams.video[0]
            packet = next(p for p in container.demux(stream) if p.pts is not None)
            assert packet.time_base is not None
            out[int(name[1])] = (float(packet.pts * packet.time_base), packet.is_keyframe)
    return out


def _timeline(playlist: str) -> dict[int, tuple[str, str, tuple[str, ...]]]:
    """Complete segment MSN -> (program date-time, EXTINF, part durations)."""
    out = {}
    date, parts = "", []
    for line in playlist.splitlines():
        if line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            date = line.split(":", 1)[1]
        elif line.startswith("#EXT-X-PART:"):
            parts.append(re.search(r"DURATION=([0-9.]+)", line).group(1))  # type: ignore[union-attr]
        elif line.startswith("#EXTINF:"):
            extinf = line[len("#EXTINF:") :]
        elif (found := re.match(r"^seg(\d+)\.m4s$", line)) is not None:
            out[int(found.group(1))] = (date, extinf, tuple(parts))
            parts = []
    return out


def test_standard_ladder_from_720p(relaycast: Relaycast, peers: Peers) -> None:
    stream = _publish(relaycast, peers, "1280x720", "standard")
    master_url = stream["playback"]["hlsUrl"]
    base = master_url.rsplit("/", 1)[0] + "/"
    master = wait_for(
        lambda: _get(master_url).decode(),
        lambda t: len(_variants(t)) == 4,
        30,
        "the master playlist to list the source and three renditions",
    )
    variants = _variants(master)
    sizes = {uri: v.get("RESOLUTION") for uri, v in variants.items()}
    assert sizes == {
        "media.m3u8": "1280x720",
        "720p/media.m3u8": "1280x720",
        "480p/media.m3u8": "854x480",
        "360p/media.m3u8": "640x360",
    }
    for v in variants.values():
        assert int(v["BANDWIDTH"]) > 0 and v["CODECS"].startswith("avc1.")
        assert "mp4a.40.2" in v["CODECS"], master
        assert float(v["FRAME-RATE"]) == pytest.approx(25, abs=1), master
    for uri in ("480p/media.m3u8", "360p/media.m3u8"):
        found = _ffprobe(base + uri)
        assert isinstance(found, list), found
        video = next(s for s in found if s["codec_type"] == "video")
        assert f"{video['width']}x{video['height']}" == sizes[uri]
        assert any(s["codec_type"] == "audio" for s in found)
    wait_for(
        lambda: _get(base + "720p/media.m3u8").decode(),
        lambda t: t.count("#EXTINF") >= 3,
        20,
        "three complete segments of the 720p rendition",
    )
    source = _segment_starts(base, "media.m3u8")
    source_timeline = _timeline(_get(base + "media.m3u8").decode())
    for uri in ("720p/media.m3u8", "480p/media.m3u8", "360p/media.m3u8"):
        timeline = _timeline(_get(base + uri).decode())
        shared = sorted(set(timeline) & set(source_timeline))
        assert len(shared) >= 2, (uri, timeline, source_timeline)
        for msn in shared:  # same date-time, duration and parts at the same MSN
            assert timeline[msn] == source_timeline[msn], (uri, msn)
        rung = _segment_starts(base, uri)
        common = sorted(set(rung) & set(source))
        assert len(common) >= 2, (uri, rung, source)
        for msn in common:
            assert rung[msn][1], f"{uri} segment {msn} starts without a keyframe"
            assert rung[msn][0] == pytest.approx(source[msn][0], abs=0.001), (uri, msn)
    health = relaycast.api.health(stream["streamId"])
    names = [r["name"] for r in health["renditions"]]
    assert names == ["720p", "480p", "360p"]
    assert all(r["bitrate"] > 0 and r["fps"] > 0 for r in health["renditions"])
    metrics = _get(relaycast.server.base + "/metrics").decode()
    sid = stream["streamId"]
    for name in names:
        labels = f'{{rendition="{name}",stream_id="{sid}"}}'
        found = re.search(
            rf"^relaycast_rendition_bitrate_bits_per_second{re.escape(labels)} (\S+)$",
            metrics,
            re.M,
        )
        assert found is not None and float(found.group(1)) > 0, name
        assert f"relaycast_rendition_lag_seconds{labels}" in metrics
        assert f"relaycast_rendition_dropped_frames_total{labels}" in metrics
    assert 'relaycast_transcode_fallbacks_total{reason="capacity"} 0.0' in metrics


def test_a_small_source_gets_only_the_rungs_it_can_fill(relaycast: Relaycast, peers: Peers) -> None:
    stream = _publish(relaycast, peers, "854x480", "high")
    master_url = stream["playback"]["hlsUrl"]
    master = wait_for(
        lambda: _get(master_url).decode(),
        lambda t: "480p/media.m3u8" in t,
        30,
        "the 480p rendition in the master playlist",
    )
    assert {v.get("RESOLUTION") for v in _variants(master).values()} == {"854x480"}
    assert set(_variants(master)) == {"media.m3u8", "480p/media.m3u8"}


def test_a_source_shorter_than_every_rung_plays_alone(relaycast: Relaycast, peers: Peers) -> None:
    stream = _publish(relaycast, peers, "640x360", "high")
    base = stream["playback"]["hlsUrl"].rsplit("/", 1)[0] + "/"
    wait_for(
        lambda: _get(base + "media.m3u8").decode(),
        lambda t: t.count("#EXTINF") >= 3,
        30,
        "three segments of the source",
    )
    assert set(_variants(_get(stream["playback"]["hlsUrl"]).decode())) == {"media.m3u8"}
    assert _get(base + "480p/media.m3u8").startswith(b"HTTP 404")
    health = relaycast.api.health(stream["streamId"])
    assert "renditions" not in health and "warnings" not in health
    assert not _workers(relaycast.server.proc.pid), "a worker for nothing to encode"


def _workers(pid: int) -> list[int]:
    """The server's spawned worker processes (multiprocessing's spawn entry point)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    found = []
    for child in children:
        with contextlib.suppress(FileNotFoundError):
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(int(child))
    return found


def _msn_of_last(playlist: str) -> int:
    numbers = re.findall(r"^seg(\d+)\.m4s$", playlist, re.M)
    return int(numbers[-1]) if numbers else -1


def test_a_killed_worker_comes_back_and_the_source_never_stops(
    relaycast: Relaycast, peers: Peers
) -> None:
    stream = relaycast.api.create_stream(
        "abr-kill", quality="standard", lowLatency=True, reconnectWindowSeconds=0
    )
    peers.start(
        "ffmpeg", ffmpeg_publish(relaycast.publish_url(stream), 20, size="640x360", gop=25, fps=25)
    )
    relaycast.api.wait_state(stream["streamId"], "live", timeout=20)
    base = stream["playback"]["hlsUrl"].rsplit("/", 1)[0] + "/"
    rung = base + "360p/media.m3u8"
    before = wait_for(
        lambda: _msn_of_last(_get(rung).decode()), lambda n: n > 0, 30, "the 360p rendition"
    )
    workers = wait_for(lambda: _workers(relaycast.server.proc.pid), bool, 10, "a worker")
    os.kill(workers[0], signal.SIGKILL)
    # The source's playlist keeps growing a segment every ~2 s all along...
    source_last, stalled_since, longest = -1, time.monotonic(), 0.0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        last = _msn_of_last(_get(base + "media.m3u8").decode())
        now = time.monotonic()
        if last != source_last:
            source_last, stalled_since = last, now
        longest = max(longest, now - stalled_since)
        time.sleep(0.2)
    assert longest < 3.5, f"the source playlist stood still for {longest:.1f} s"
    # ... and the rendition is back, with segments newer than before the kill.
    wait_for(
        lambda: _msn_of_last(_get(rung).decode()), lambda n: n > before + 1, 15, "360p resumed"
    )
    assert "transcode worker died; restarting" in relaycast.log()
    health = relaycast.api.health(stream["streamId"])
    assert [r["name"] for r in health["renditions"]] == ["360p"]
    assert "warnings" not in health


def _pulled_size(url: str) -> str:
    """WIDTHxHEIGHT of the video nginx-rtmp plays back at ``url``."""
    proc = probe(url)
    out, err = proc.communicate(timeout=40)
    assert proc.returncode == 0, err
    video = next(s for s in json.loads(out)["streams"] if "width" in s)
    return f"{video['width']}x{video['height']}"


def test_a_destination_pushes_the_rung_it_names(
    relaycast: Relaycast, peers: Peers, tmp_path: Path
) -> None:
    port = free_port()
    start_nginx(peers, tmp_path / "nginx", [port], ["live"])
    stream = relaycast.api.create_stream(
        "abr-push", quality="standard", lowLatency=True, reconnectWindowSeconds=0
    )
    path = f"/v1/live-streams/{stream['streamId']}/destinations"
    url = f"rtmp://127.0.0.1:{port}/live"
    for key, rendition in (("rung", "360p"), ("whole", "source")):
        body = {"url": url, "streamKey": key, "rendition": rendition}
        created = relaycast.api.ok("POST", path, body, status=201)
        assert created["rendition"] == rendition
    peers.start(
        "ffmpeg",
        ffmpeg_publish(relaycast.publish_url(stream), 20, size="854x480", fps=25, gop=25),
    )
    relaycast.api.wait_state(stream["streamId"], "live", timeout=20)
    wait_for(
        lambda: relaycast.api.ok("GET", path)["destinations"],
        lambda ds: all(d["status"]["state"] == "active" for d in ds),
        20,
        "both destinations to be active",
    )
    # the rung (a late worker means the source meanwhile, then the rung)
    wait_for(lambda: _pulled_size(f"{url}/rung"), lambda s: s == "640x360", 40, "the 360p rung")
    assert _pulled_size(f"{url}/whole") == "854x480"


def test_the_recording_keeps_the_source(relaycast: Relaycast, peers: Peers) -> None:
    stream = relaycast.api.create_stream(
        "abr-rec", quality="standard", recording=True, reconnectWindowSeconds=0
    )
    url = relaycast.publish_url(stream)
    encoder = peers.start("ffmpeg", ffmpeg_publish(url, 6, size="854x480", fps=25, gop=25))
    relaycast.api.wait_state(stream["streamId"], "live", timeout=20)
    wait_for(
        lambda: relaycast.api.health(stream["streamId"]).get("renditions") or [],
        lambda r: len(r) == 2,
        20,
        "the 480p and 360p renditions",
    )
    assert encoder.wait(30) == 0, encoder.output()
    items = [m for m in _wait_ready(relaycast.api) if m.get("streamId") == stream["streamId"]]
    assert len(items) == 1, items
    assert _pulled_size(items[0]["playback"]["mp4Url"]) == "854x480"
