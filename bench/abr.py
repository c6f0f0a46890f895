"""Renditions (issue 17): the ``standard`` ladder from one paced 4 Mbit/s 720p30 publisher.

* CPU per rendition-second: ``relaycast serve`` (the server and its transcode worker
  process) packaging the source and its three rungs (720p, 480p, 360p) as LL-HLS,
  against the ``ffmpeg`` command line producing the same ladder from the same input in
  the same run: decode once, scale three ways (bilinear, as PyAV's reformat), libx264
  with the options the worker gives it (``server.encode.video.x264_options``: preset,
  no B-frames, GOP, VBV, forced IDR at the source's keyframes), the same bitrates, AAC
  copied, fMP4 HLS. Both do three rungs, so the ratio of their CPU is the ratio per
  rendition-second. Target: relaycast / ffmpeg <= 1.1 (the encoders dominate; what we
  add around them must be small). relaycast's figure also holds the RTMP ingest and the
  source's own packaging, which ffmpeg's does not.
* Added latency: when each LL-HLS part of the 360p rung is first listed against the
  same part (same MSN and index) of the source, both playlists polled every 50 ms.
  Target: p95 <= 1 s.
* Streams per core for ``standard`` at 720p30: 1000 ms/s over relaycast's CPU ms/s.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import aiohttp

from bench import procstat
from bench.multistream import MsTiming
from bench.scenarios import Result, ScenarioConfig, Workers, line, log
from bench.servers import Relaycast
from server.encode.profile import VideoProfile
from server.encode.video import x264_options
from server.settings import TranscodeSettings
from server.transcode.ladder import Rendition, select

QUALITY = "standard"
SOURCE = (1280, 720, 30)  # the bench sample (bench.media.SampleSpec)
CPU_TARGET = 1.1
LATENCY_TARGET_MS = 1000.0
POLL = 0.05
READY_TIMEOUT = 40.0
SERVER_ENV = {"RELAYCAST_SRT__PORT": "0", "RELAYCAST_TRANSCODE__MAX_STREAMS": "1"}
_PART = re.compile(r'#EXT-X-PART:[^\n]*URI="(part\d+\.\d+\.m4s)"')


def ladder() -> list[Rendition]:
    """The renditions the server makes of the sample, from the default settings."""
    settings = TranscodeSettings()
    width, height, fps = SOURCE
    return select(settings.ladders[QUALITY], width, height, fps)


def _tree(pid: int) -> list[int]:
    """``pid`` and every live descendant (the server's transcode worker)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{current}/task/{current}/children").read_text()
            todo += [int(c) for c in children.split()]
    return out


def _cpu(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            out[pid] = procstat.cpu_times(pid).total
    return out


def _spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two readings; a process born meanwhile counts from zero."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


# --------------------------------------------------------------------------- relaycast


async def _wait_ready(server: Relaycast, stream_id: str, rungs: int) -> Result:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        health = server.api("GET", f"/v1/live-streams/{stream_id}/health")
        if len(health.get("renditions") or []) == rungs:
            return dict(health)
        await asyncio.sleep(0.5)
    raise RuntimeError(f"the stream's {rungs} renditions never came: {health}")


async def _part_lags(source: str, rung: str, seconds: float) -> list[float]:
    """Milliseconds from a part first listed in ``source`` to the same part in ``rung``."""
    seen: dict[str, dict[str, float]] = {source: {}, rung: {}}
    old: set[str] = set()
    async with aiohttp.ClientSession() as http:

        async def poll(url: str, first: bool) -> None:
            async with http.get(url) as resp:
                text = await resp.text()
            now = time.monotonic()
            for name in _PART.findall(text):
                if first:
                    old.add(name)  # listed before we looked: its time is unknown
                seen[url].setdefault(name, now)

        await asyncio.gather(poll(source, True), poll(rung, True))
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await asyncio.gather(poll(source, False), poll(rung, False))
            await asyncio.sleep(POLL)
    both = (set(seen[source]) & set(seen[rung])) - old
    return sorted((seen[rung][n] - seen[source][n]) * 1000 for n in both)


async def _relaycast(sample: Path, timing: MsTiming, rungs: list[Rendition]) -> Result:
    server = Relaycast(extra_env=SERVER_ENV).start()
    load: Workers | None = None
    try:
        body = {"name": "abr", "quality": QUALITY, "lowLatency": True}
        stream = server.api("POST", "/v1/live-streams", {**body, "reconnectWindowSeconds": 0})
        load = Workers([server.rtmp_url(stream["ingest"]["streamKey"])], sample, "paced", 1)
        await load.start()
        await load.go()
        await _wait_ready(server, stream["streamId"], len(rungs))
        await asyncio.sleep(timing.warmup)
        m0, c0 = await load.mark(), _cpu(_tree(server.pid))
        await asyncio.sleep(timing.window)
        m1, c1 = await load.mark(), _cpu(_tree(server.pid))
        seconds = m1["t"] - m0["t"]
        health = server.api("GET", f"/v1/live-streams/{stream['streamId']}/health")
        media = stream["playback"]["hlsUrl"].rsplit("/", 1)[0]
        lags = await _part_lags(
            f"{media}/media.m3u8", f"{media}/{rungs[-1].name}/media.m3u8", timing.window
        )
        done = await load.stop()
        load = None
        return {
            "cpu_ms_per_s": _spent(c0, c1) * 1000 / seconds,
            "processes": len(c1),
            "mbit_in": (m1["bytes"] - m0["bytes"]) * 8 / seconds / 1e6,
            "window_s": seconds,
            "renditions": health.get("renditions"),
            "warnings": health.get("warnings"),
            "part_lag_ms": lags,
            "publisher_errors": done["errors"],
        }
    finally:
        if load is not None:
            await load.kill()
        server.stop()


# --------------------------------------------------------------------------- ffmpeg


def ffmpeg_ladder(sample: Path, rungs: list[Rendition], seconds: float, out: Path) -> list[str]:
    """The ffmpeg command line making ``rungs`` from ``sample`` in real time, looped."""
    labels = [f"v{i}" for i in range(len(rungs))]
    split = f"[0:v]split={len(rungs)}" + "".join(f"[s{i}]" for i in range(len(rungs)))
    scales = [
        f"[s{i}]scale={r.width}:{r.height}:flags=bilinear[{labels[i]}]" for i, r in enumerate(rungs)
    ]
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re"]
    cmd += ["-stream_loop", "-1", "-i", str(sample), "-t", f"{seconds:.1f}"]
    cmd += ["-filter_complex", ";".join([split, *scales])]
    for label, rung in zip(labels, rungs, strict=True):
        fps = rung.fps or Fraction(SOURCE[2])
        profile = VideoProfile(width=rung.width, height=rung.height, fps=fps, bitrate=rung.bitrate)
        options = x264_options(profile)
        cmd += ["-map", f"[{label}]", "-map", "0:a", "-c:v", "libx264", "-b:v", str(rung.bitrate)]
        cmd += ["-pix_fmt", "yuv420p", "-force_key_frames", "source"]
        for key, value in options.items():
            cmd += [f"-{key}", value]
        directory = out / rung.name
        directory.mkdir(parents=True, exist_ok=True)
        cmd += ["-c:a", "copy", "-f", "hls", "-hls_time", "2", "-hls_segment_type", "fmp4"]
        cmd += ["-hls_list_size", "6", "-hls_flags", "delete_segments"]
        cmd += [str(directory / "media.m3u8")]
    return cmd


async def _ffmpeg(sample: Path, timing: MsTiming, rungs: list[Rendition]) -> Result:
    with tempfile.TemporaryDirectory(prefix="bench-abr-") as tmp:
        seconds = timing.warmup + timing.window + 5
        cmd = ffmpeg_ladder(sample, rungs, seconds, Path(tmp))
        errors = Path(tmp) / "stderr.txt"
        with errors.open("w") as sink:
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdout=asyncio.subprocess.DEVNULL, stderr=sink
            )
        try:
            await asyncio.sleep(timing.warmup)
            if proc.returncode is not None:
                raise RuntimeError(f"ffmpeg ladder failed: {errors.read_text()[-2000:]}")
            t0, c0 = time.monotonic(), procstat.cpu_times(proc.pid).total
            await asyncio.sleep(timing.window)
            t1, c1 = time.monotonic(), procstat.cpu_times(proc.pid).total
        finally:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
        return {"cpu_ms_per_s": (c1 - c0) * 1000 / (t1 - t0), "window_s": t1 - t0, "cmd": cmd}


# --------------------------------------------------------------------------- scenario


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


async def scenario_abr(sample: Path, config: ScenarioConfig) -> list[Result]:
    timing = MsTiming.make(config.quick)
    rungs = ladder()
    names = "/".join(r.name for r in rungs)
    log(f"ABR: relaycast, one 720p30 publisher, quality {QUALITY} ({names})")
    ours = await _relaycast(sample, timing, rungs)
    log("ABR: ffmpeg, the same ladder from the same sample")
    reference = await _ffmpeg(sample, timing, rungs)
    per_rung = ours["cpu_ms_per_s"] / len(rungs)
    ref_per_rung = reference["cpu_ms_per_s"] / len(rungs)
    ratio = ours["cpu_ms_per_s"] / reference["cpu_ms_per_s"] if reference["cpu_ms_per_s"] else None
    params = {"quality": QUALITY, "rungs": names, "input": "720p30 4 Mbit/s", "quick": config.quick}
    cpu_target = f"<= {CPU_TARGET} x ffmpeg"
    cpu_met = ratio is not None and ratio <= CPU_TARGET and not ours["warnings"]
    cpu = line("ABR-CPU", params, ours, reference, ratio, cpu_target, cpu_met, config)
    cpu["row"] = [
        f"ABR: {QUALITY} ladder ({names}) from 720p30, CPU ms per rendition-s",
        f"{per_rung:.0f}",
        f"ffmpeg {ref_per_rung:.0f}",
        f"{ratio:.2f}" if ratio is not None else "-",
        cpu_target,
        "yes" if cpu_met else "**no**",
        f"whole server + worker {ours['cpu_ms_per_s']:.0f} ms/s",
    ]
    lags = ours["part_lag_ms"]
    p50, p95 = _percentile(lags, 50), _percentile(lags, 95)
    lat_met = p95 is not None and p95 <= LATENCY_TARGET_MS
    latency = line(
        "ABR-LATENCY",
        {**params, "parts": len(lags), "poll_ms": POLL * 1000},
        {"p50_ms": p50, "p95_ms": p95, "lags_ms": lags},
        None,
        None,
        f"p95 <= {LATENCY_TARGET_MS:.0f} ms",
        lat_met,
        config,
    )
    latency["row"] = [
        f"ABR: {rungs[-1].name} part listed after the source's same part (p50 / p95)",
        f"{p50:.0f} / {p95:.0f} ms" if p50 is not None and p95 is not None else "-",
        "—",
        "",
        f"p95 <= {LATENCY_TARGET_MS:.0f} ms",
        "yes" if lat_met else "**no**",
        f"{len(lags)} parts",
    ]
    per_core = 1000 / ours["cpu_ms_per_s"] if ours["cpu_ms_per_s"] else None
    capacity = line(
        "ABR-CAPACITY",
        params,
        {"streams_per_core": per_core},
        {"streams_per_core": 1000 / reference["cpu_ms_per_s"]},
        None,
        "record",
        True,
        config,
    )
    capacity["row"] = [
        f"ABR: {QUALITY} streams per core at 720p30 input",
        f"{per_core:.2f}" if per_core else "-",
        f"ffmpeg {1000 / reference['cpu_ms_per_s']:.2f}",
        "",
        "record",
        "—",
        "",
    ]
    return [cpu, latency, capacity]
