"""Channel playout: CPU of one 24/7 channel next to ``ffmpeg -re`` doing the same job.

Two generated library items of different sizes and frame rates are played in a loop by
a channel with the default profile (1280x720, 30 fps, H.264 3 Mbit/s veryfast, AAC
128 kbit/s), conformed (letterboxed, frame rate converted, resampled), published on the
bus and packaged as LL-HLS. The reference is ffmpeg reading the same files with the
concat demuxer in real time (``-re``), scaling and padding to the same size, converting
to the same rate, encoding with the same x264 options (``server.encode.video.
x264_options``) and writing HLS. CPU is measured over the same window after the same
warm-up: the relaycast server and all its processes (the playout worker) against the
ffmpeg process. Target: relaycast / ffmpeg <= 1.1. A second channel on the same server
plays two items that already are the profile, which are remuxed
(``server.playout.remux``): target <= 0.2 x the conformed channel's CPU.

The windows are interleaved: round after round, the conformed channel, then ffmpeg,
then the remuxed channel, each alone on the machine (one server for every round: its
channels are started and stopped through the API; a fresh ffmpeg each round). ffmpeg
alone varied by +-15 % from one run to the next, so one window per side made the ratio
a coin toss; each figure is now the median of its rounds, the ratio the median of the
rounds' ratios (each round's pair saw the same machine), and every sample is in the
JSON.

A last line is the A/V drift after a day of playout simulated at full speed
(``bench.channel_drift``): at most one output frame.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from bench.channel_drift import simulate
from bench.procstat import cpu_times, machine
from bench.scenarios import log
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


@dataclass(frozen=True)
class Channels:
    """One relaycast server with a conformed and a remuxed channel, both stopped."""

    server: ServerProcess
    key: str
    conformed: str
    remuxed: str


def _channel(server: ServerProcess, key: str, name: str, items: list[Path]) -> str:
    """A looping channel with ``items`` queued (uploaded and ready); not started."""
    media = [upload(server.base, key, path) for path in items]
    for media_id in media:
        _wait(
            lambda m=media_id: _api(server, key, "GET", f"/v1/media/{m}")["status"] == "ready",
            f"media {media_id} ready",
        )
    body = json.dumps({"name": name, "source": "queue", "loop": True})
    sid: str = _api(server, key, "POST", "/v1/live-streams", body)["streamId"]
    _api(server, key, "POST", f"/v1/live-streams/{sid}/stop")  # not live until its turn
    for media_id in media:
        _api(
            server, key, "POST", f"/v1/live-streams/{sid}/queue", json.dumps({"mediaId": media_id})
        )
    return sid


def start_channels(workdir: Path, conformed: list[Path], remuxed: list[Path]) -> Channels:
    server = start_server(workdir / "data", env={"RELAYCAST_API__RATE_LIMIT_PER_MINUTE": "1000000"})
    try:
        key = server.bootstrap_key
        assert key, "no bootstrap key"
        return Channels(
            server,
            key,
            _channel(server, key, "bench conformed", conformed),
            _channel(server, key, "bench remuxed", remuxed),
        )
    except BaseException:
        server.stop()
        raise


def run_channel(channels: Channels, sid: str, warmup: float, window: float) -> float:
    """Start channel ``sid``, measure the whole server, stop it again."""
    server, key = channels.server, channels.key

    def state() -> str:
        return str(_api(server, key, "GET", f"/v1/live-streams/{sid}")["state"])

    _api(server, key, "POST", f"/v1/live-streams/{sid}/start")
    _wait(lambda: state() == "live", "live")
    try:
        return measure(server.proc.pid, warmup, window)
    finally:
        _api(server, key, "POST", f"/v1/live-streams/{sid}/stop")
        _wait(lambda: state() != "live", "stopped")


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
    out.mkdir(parents=True)
    repeats = int((warmup + window) / (seconds * len(items))) + 2
    proc = subprocess.Popen(reference_command(items, out, repeats), stdin=subprocess.DEVNULL)
    try:
        return measure(proc.pid, warmup, window)
    finally:
        proc.kill()
        proc.wait(10)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _ratios(ours: list[float], theirs: list[float]) -> list[float | None]:
    """Round by round: each pair of windows ran next to each other."""
    return [a / b if b > 0 else None for a, b in zip(ours, theirs, strict=True)]


def _median_ratio(ratios: list[float | None]) -> float | None:
    known = [r for r in ratios if r is not None]
    return statistics.median(known) if known else None


def _rounded(values: list[float | None], digits: int = 3) -> list[float | None]:
    return [None if v is None else round(v, digits) for v in values]


def _cpu_line(ours: list[float], ffmpeg: list[float], window: float) -> dict[str, Any]:
    """``ours`` and ``ffmpeg``: CPU s/s of each round, in the order they ran."""
    ratios = _ratios(ours, ffmpeg)
    ratio = _median_ratio(ratios)
    met = ratio is not None and ratio <= TARGET_RATIO
    d = PlayoutSettings()
    profile = f"{d.width}x{d.height} {d.fps} fps {d.video_bitrate // 1000} kbit/s {d.preset}"
    mine, theirs = _median(ours), _median(ffmpeg)
    known = [r for r in ratios if r is not None]
    spread = f"ratio per round {min(known):.2f}-{max(known):.2f}" if known else "-"
    return {
        "scenario": "CHANNEL",
        "params": {
            "profile": profile,
            "items": [f"{s}@{r}" for _, s, r in ITEMS],
            "window_s": window,
            "rounds": len(ours),
        },
        "relaycast": {"cpu_s_per_s": round(mine, 3), "samples": _rounded(list(ours))},
        "reference": {"ffmpeg_cpu_s_per_s": round(theirs, 3), "samples": _rounded(list(ffmpeg))},
        "ratios": _rounded(ratios),
        "ratio": round(ratio, 3) if ratio is not None else None,
        "target": f"relaycast / ffmpeg <= {TARGET_RATIO:g}",
        "met": met,
        "row": [
            f"channel: one conformed 24/7 channel ({profile}), CPU s/s, vs ffmpeg -re concat, "
            f"median of {len(ours)} interleaved rounds",
            f"{mine:.2f}",
            f"{theirs:.2f}",
            f"{ratio:.2f}" if ratio is not None else "-",
            f"<= {TARGET_RATIO:g}",
            "yes" if met else "**no**",
            f"whole server + playout worker vs one ffmpeg (HLS out both); {spread}",
        ],
    }


def _remux_line(remuxed: list[float], conformed: list[float], window: float) -> dict[str, Any]:
    ratios = _ratios(remuxed, conformed)
    ratio = _median_ratio(ratios)
    met = ratio is not None and ratio <= TARGET_REMUX
    mine, theirs = _median(remuxed), _median(conformed)
    return {
        "scenario": "CHANNEL-REMUX",
        "params": {
            "items": [f"{s}@{r}" for _, s, r in REMUX_ITEMS],
            "window_s": window,
            "rounds": len(remuxed),
        },
        "relaycast": {"cpu_s_per_s": round(mine, 3), "samples": _rounded(list(remuxed))},
        "reference": {
            "conformed_cpu_s_per_s": round(theirs, 3),
            "samples": _rounded(list(conformed)),
        },
        "ratios": _rounded(ratios),
        "ratio": round(ratio, 3) if ratio is not None else None,
        "target": f"remuxed / conformed <= {TARGET_REMUX:g}",
        "met": met,
        "row": [
            "channel: items that are the profile (remuxed), CPU s/s, vs the conformed channel, "
            f"median of {len(remuxed)} interleaved rounds",
            f"{mine:.3f}",
            f"{theirs:.2f}",
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


def _rounds(
    workdir: Path, seconds: float, warmup: float, window: float, rounds: int
) -> tuple[list[float], list[float], list[float]]:
    """Conformed, ffmpeg, remuxed, round after round: CPU s/s of each window."""
    items = make_items(workdir, seconds)
    same = make_items(workdir, seconds, REMUX_ITEMS)
    channels = start_channels(workdir / "relaycast", items, same)
    ours: list[float] = []
    ffmpeg: list[float] = []
    remuxed: list[float] = []
    try:
        for n in range(rounds):
            log(f"channel: round {n + 1}/{rounds}: conformed channel")
            ours.append(run_channel(channels, channels.conformed, warmup, window))
            log(f"channel: round {n + 1}/{rounds}: ffmpeg -re")
            ffmpeg.append(run_reference(workdir / f"round-{n}", items, warmup, window, seconds))
            log(f"channel: round {n + 1}/{rounds}: remuxed channel")
            remuxed.append(run_channel(channels, channels.remuxed, warmup, window))
            log(f"channel: round {n + 1}: {ours[-1]:.3f} / {ffmpeg[-1]:.3f} / {remuxed[-1]:.3f}")
    finally:
        channels.server.stop()
    return ours, ffmpeg, remuxed


async def channel_scenario(quick: bool, rounds: int | None = None) -> list[dict[str, Any]]:
    """``rounds`` (``--repeats``): interleaved measurement rounds (default 3 quick, 5 full)."""
    seconds, warmup, window = (4.0, 3.0, 8.0) if quick else (10.0, 5.0, 20.0)
    rounds = rounds or (3 if quick else 5)
    workdir = Path(tempfile.mkdtemp(prefix="relaycast-channel-bench-"))
    try:
        ours, ffmpeg, remuxed = await asyncio.to_thread(
            _rounds, workdir, seconds, warmup, window, rounds
        )
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
