"""Channel playout: CPU of one 24/7 channel next to ``ffmpeg -re`` doing the same job.

Two generated library items of different sizes and frame rates are played in a loop by
a channel with the default profile (1280x720, 30 fps, H.264 3 Mbit/s veryfast, AAC
128 kbit/s), conformed (letterboxed, frame rate converted, resampled), published on the
bus and packaged as LL-HLS. The reference is ffmpeg reading the same files with the
concat demuxer in real time (``-re``), scaling and padding to the same size, converting
to the same rate, encoding with the same x264 options (``server.encode.video.
x264_options``) and writing HLS. CPU is measured over the same window after the same
warm-up: the relaycast server and all its processes (the playout worker) against the
ffmpeg process. Target: relaycast / ffmpeg <= 1.1. A second relaycast run plays two
items that already are the profile, which are remuxed (``server.playout.remux``):
target <= 0.2 x the conformed channel's CPU.

A second line is the A/V drift after a day of playout simulated at full speed
(``bench.channel_drift``): at most one output frame.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from fractions import Fraction
from pathlib import Path
from typing import Any

from bench.channel_drift import simulate
from bench.procstat import cpu_times, machine
from bench.vod import upload
from server.encode.profile import VideoProfile
from server.encode.video import x264_options
from server.settings import PlayoutSettings
from tests.serverproc import ServerProcess, start_server

TARGET_RATIO = 1.1
TARGET_REMUX = 0.2
ITEMS = (("a.mp4", "960x540", 25), ("b.mp4", "640x360", 30))
"""Conformed: neither is the default profile (1280x720, 30 fps)."""
REMUX_ITEMS = (("c.mp4", "1280x720", 30), ("d.mp4", "1280x720", 30))
"""Remuxed: the profile exactly (x264 ultrafast has no B-frames; AAC 48 kHz stereo)."""


def make_items(
    root: Path, seconds: float, items: tuple[tuple[str, str, int], ...] = ITEMS
) -> list[Path]:
    """Test pattern and tone, x264 ultrafast: cheap to make, real H.264/AAC to decode."""
    paths = []
    for name, size, rate in items:
        path = root / name
        cmd = [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={size}:rate={rate}",
        ]
        cmd += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-ac", "2"]
        cmd += [
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-g",
            str(2 * rate),
        ]
        cmd += ["-c:a", "aac", "-t", str(seconds), str(path)]
        subprocess.run(cmd, check=True, timeout=120)
        paths.append(path)
    return paths


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (the playout worker is a child)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def _cpu(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        try:
            out[pid] = cpu_times(pid).total
        except OSError:
            continue
    return out


def measure(root_pid: int, warmup: float, window: float) -> float:
    """CPU seconds per second of ``root_pid`` and its descendants over ``window``."""
    time.sleep(warmup)
    before = _cpu(_descendants(root_pid))
    started = time.monotonic()
    time.sleep(window)
    after = _cpu(_descendants(root_pid))
    elapsed = time.monotonic() - started
    used = sum(after[pid] - before[pid] for pid in after if pid in before)
    return used / elapsed


def _api(server: ServerProcess, key: str, method: str, path: str, body: str | None = None) -> Any:
    request = urllib.request.Request(
        server.base + path,
        data=body.encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        text = resp.read()
    return json.loads(text) if text else None


def _wait(check: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def run_relaycast(workdir: Path, items: list[Path], warmup: float, window: float) -> float:
    server = start_server(workdir / "data", env={"RELAYCAST_API__RATE_LIMIT_PER_MINUTE": "1000000"})
    try:
        key = server.bootstrap_key
        assert key, "no bootstrap key"
        media = [upload(server.base, key, path) for path in items]
        for media_id in media:
            _wait(
                lambda m=media_id: _api(server, key, "GET", f"/v1/media/{m}")["status"] == "ready",
                f"media {media_id} ready",
            )
        body = '{"name": "bench channel", "source": "queue", "loop": true}'
        sid = _api(server, key, "POST", "/v1/live-streams", body)["streamId"]
        for media_id in media:
            _api(
                server, key, "POST", f"/v1/live-streams/{sid}/queue", f'{{"mediaId": "{media_id}"}}'
            )
        _api(server, key, "POST", f"/v1/live-streams/{sid}/start")
        _wait(
            lambda: _api(server, key, "GET", f"/v1/live-streams/{sid}")["state"] == "live", "live"
        )
        return measure(server.proc.pid, warmup, window)
    finally:
        server.stop()


def reference_command(items: list[Path], out: Path, repeats: int) -> list[str]:
    """``ffmpeg -re`` + concat demuxer producing the channel's default profile as HLS."""
    d = PlayoutSettings()
    listing = out / "list.txt"
    listing.write_text("".join(f"file '{path}'\n" for _ in range(repeats) for path in items))
    profile = VideoProfile(d.width, d.height, Fraction(d.fps), d.video_bitrate, preset=d.preset)
    box = (
        f"scale={d.width}:{d.height}:force_original_aspect_ratio=decrease,"
        f"pad={d.width}:{d.height}:(ow-iw)/2:(oh-ih)/2,fps={d.fps},format=yuv420p"
    )
    x264 = [arg for name, value in x264_options(profile).items() for arg in (f"-{name}", value)]
    return [
        "ffmpeg", "-v", "error", "-nostdin",
        "-re", "-f", "concat", "-safe", "0", "-i", str(listing),
        "-vf", box, "-af", "aresample=48000", "-ac", "2",
        "-c:v", "libx264", "-b:v", str(d.video_bitrate), *x264,
        "-c:a", "aac", "-b:a", str(d.audio_bitrate),
        "-f", "hls", "-hls_time", "2", "-hls_list_size", "6", "-hls_flags", "delete_segments",
        str(out / "index.m3u8"),
    ]  # fmt: skip


def run_reference(
    workdir: Path, items: list[Path], warmup: float, window: float, seconds: float
) -> float:
    out = workdir / "ffmpeg"
    out.mkdir()
    repeats = int((warmup + window) / (seconds * len(items))) + 2
    proc = subprocess.Popen(reference_command(items, out, repeats), stdin=subprocess.DEVNULL)
    try:
        return measure(proc.pid, warmup, window)
    finally:
        proc.kill()
        proc.wait(10)


def _cpu_line(ours: float, ffmpeg: float, window: float) -> dict[str, Any]:
    ratio = ours / ffmpeg if ffmpeg > 0 else None
    met = ratio is not None and ratio <= TARGET_RATIO
    d = PlayoutSettings()
    profile = f"{d.width}x{d.height} {d.fps} fps {d.video_bitrate // 1000} kbit/s {d.preset}"
    return {
        "scenario": "CHANNEL",
        "params": {
            "profile": profile,
            "items": [f"{s}@{r}" for _, s, r in ITEMS],
            "window_s": window,
        },
        "relaycast": {"cpu_s_per_s": round(ours, 3)},
        "reference": {"ffmpeg_cpu_s_per_s": round(ffmpeg, 3)},
        "ratio": round(ratio, 3) if ratio is not None else None,
        "target": f"relaycast / ffmpeg <= {TARGET_RATIO:g}",
        "met": met,
        "row": [
            f"channel: one conformed 24/7 channel ({profile}), CPU s/s, vs ffmpeg -re concat",
            f"{ours:.2f}",
            f"{ffmpeg:.2f}",
            f"{ratio:.2f}" if ratio is not None else "-",
            f"<= {TARGET_RATIO:g}",
            "yes" if met else "**no**",
            "whole server + playout worker vs one ffmpeg (HLS out both)",
        ],
    }


def _remux_line(remuxed: float, conformed: float, window: float) -> dict[str, Any]:
    ratio = remuxed / conformed if conformed > 0 else None
    met = ratio is not None and ratio <= TARGET_REMUX
    return {
        "scenario": "CHANNEL-REMUX",
        "params": {"items": [f"{s}@{r}" for _, s, r in REMUX_ITEMS], "window_s": window},
        "relaycast": {"cpu_s_per_s": round(remuxed, 3)},
        "reference": {"conformed_cpu_s_per_s": round(conformed, 3)},
        "ratio": round(ratio, 3) if ratio is not None else None,
        "target": f"remuxed / conformed <= {TARGET_REMUX:g}",
        "met": met,
        "row": [
            "channel: items that are the profile (remuxed), CPU s/s, vs the conformed channel",
            f"{remuxed:.3f}",
            f"{conformed:.2f}",
            f"{ratio:.2f}" if ratio is not None else "-",
            f"<= {TARGET_REMUX:g}",
            "yes" if met else "**no**",
            "whole server + playout worker in both",
        ],
    }


def _drift_line(hours: float) -> dict[str, Any]:
    drift = simulate(hours)
    met = drift.worst_skew < drift.frame and drift.worst_boundary < drift.frame
    return {
        "scenario": "CHANNEL-DRIFT",
        "params": {"hours": hours, "items": drift.items},
        "relaycast": {
            "final_skew_ms": round(drift.final_skew * 1000, 2),
            "worst_skew_ms": round(drift.worst_skew * 1000, 2),
            "worst_boundary_ms": round(drift.worst_boundary * 1000, 2),
        },
        "target": "A/V skew <= 1 frame",
        "met": met,
        "row": [
            f"channel drift: {hours:g} h of playout simulated ({drift.items} items), worst A/V ms",
            f"{drift.worst_skew * 1000:.1f}",
            "-",
            "-",
            f"<= {drift.frame * 1000:.1f} ms",
            "yes" if met else "**no**",
            f"final {drift.final_skew * 1000:.1f} ms",
        ],
    }


async def channel_scenario(quick: bool) -> list[dict[str, Any]]:
    seconds, warmup, window = (4.0, 3.0, 8.0) if quick else (10.0, 5.0, 30.0)
    workdir = Path(tempfile.mkdtemp(prefix="relaycast-channel-bench-"))
    try:
        items = await asyncio.to_thread(make_items, workdir, seconds)
        ours = await asyncio.to_thread(run_relaycast, workdir / "conformed", items, warmup, window)
        ffmpeg = await asyncio.to_thread(run_reference, workdir, items, warmup, window, seconds)
        same = await asyncio.to_thread(make_items, workdir, seconds, REMUX_ITEMS)
        remuxed = await asyncio.to_thread(run_relaycast, workdir / "remuxed", same, warmup, window)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    lines = [
        _cpu_line(ours, ffmpeg, window),
        _remux_line(remuxed, ours, window),
        _drift_line(2.0 if quick else 24.0),
    ]
    for line in lines:
        line["machine"] = machine()
        line["at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return lines
