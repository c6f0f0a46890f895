"""WebRTC cost: server CPU of one WHIP publisher against one RTMP publisher of the same
stream on relaycast, and server CPU per WHEP viewer.

The stream is the benchmark's 4 Mbit/s 720p30 sample encoded without B-frames (WebRTC
carries none): the RTMP publisher sends it as FLV (H.264 + AAC), the WHIP publisher (an
aiortc peer in its own process: real ICE, DTLS and SRTP over loopback) as RTP, with the
AAC turned into Opus as a browser or OBS would send it. Video is passed through either
way; the WHIP side also transcodes Opus to AAC for HLS, which is part of what a WebRTC
publisher costs. Server CPU is the ``relaycast serve`` process and its children (the
transcoder is one), minus the same server idle. Then WHEP viewers (aiortc, their own
process, counting what they receive without decoding it) join the WHIP stream in steps;
per-viewer cost = (CPU with N viewers - CPU with none) / N. Target: the WHIP publisher
costs <= 2 x the RTMP one; the per-viewer figure is recorded (no reference runs WHEP).
Last, glass-to-glass over WHEP in Chromium (bench.g2g): target p95 <= 500 ms.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import procstat
from bench.g2g import glass_to_glass
from bench.media import SampleSpec, ensure_sample
from bench.multistream import MsTiming
from bench.scenarios import ROOT, Result, ScenarioConfig, Workers, line, log
from bench.servers import Relaycast

TARGET_RATIO = 2.0
TARGET_G2G_MS = 500.0
SERVER_ENV = {"RELAYCAST_SRT__PORT": "0"}
SPEC = SampleSpec(bframes=0)


def media(cache: Path) -> tuple[Path, Path, Path]:
    """The FLV sample without B-frames, its video as Annex B and its audio as Opus."""
    flv = ensure_sample(cache, SPEC)
    h264, opus = flv.with_suffix(".h264"), flv.with_suffix(".opus.ogg")
    for out, args in (
        (h264, ["-map", "0:v", "-c:v", "copy", "-bsf:v", "h264_mp4toannexb", "-f", "h264"]),
        (opus, ["-map", "0:a", "-c:a", "libopus", "-b:a", "128k", "-f", "ogg"]),
    ):
        if not out.exists():
            tmp = out.with_suffix(".tmp")
            cmd = ["ffmpeg", "-v", "error", "-y", "-i", str(flv), *args, str(tmp)]
            subprocess.run(cmd, check=True)
            tmp.rename(out)
    return flv, h264, opus


def tree_cpu(pid: int) -> dict[int, float]:
    """Own CPU seconds of ``pid`` and of every live descendant, by pid."""
    out: dict[int, float] = {}
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            out[current] = procstat.cpu_times(current).total
            tasks = Path(f"/proc/{current}/task")
            for task in tasks.iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


async def window(pid: int, seconds: float) -> Result:
    """Server CPU (the process and its children) over ``seconds``."""
    c0, t0 = tree_cpu(pid), time.monotonic()
    await asyncio.sleep(seconds)
    c1, t1 = tree_cpu(pid), time.monotonic()
    spent = {p: c1[p] - c0.get(p, 0.0) for p in c1}  # a new child from 0
    return {
        "cpu_ms_per_s": sum(spent.values()) * 1000 / (t1 - t0),
        "children_cpu_ms_per_s": sum(v for p, v in spent.items() if p != pid) * 1000 / (t1 - t0),
        "processes": len(c1),
        "rss_mib": procstat.memory_kib(pid).get("VmRSS", 0) / 1024,
    }


def _stream(server: Relaycast, name: str) -> Result:
    made: Result = server.api(
        "POST", "/v1/live-streams", {"name": name, "reconnectWindowSeconds": 0}
    )
    return made


async def _wait_live(server: Relaycast, stream_id: str, limit: float = 30.0) -> Result:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        health: Result = server.api("GET", f"/v1/live-streams/{stream_id}/health")
        if health["state"] == "live" and (health.get("ingest") or {}).get("bitrate"):
            return health
        await asyncio.sleep(0.5)
    raise RuntimeError(f"stream {stream_id} never went live")


def _bitrate(server: Relaycast, stream_id: str) -> float:
    health = server.api("GET", f"/v1/live-streams/{stream_id}/health")
    return float((health.get("ingest") or {}).get("bitrate", 0)) / 1e6


async def _rtmp(server: Relaycast, flv: Path, timing: MsTiming) -> Result:
    stream = _stream(server, "rtmp")
    load = Workers([server.rtmp_url(stream["ingest"]["streamKey"])], flv, "paced", 1)
    try:
        await load.start()
        await load.go()
        await _wait_live(server, stream["streamId"])
        await asyncio.sleep(timing.warmup)
        result = await window(server.pid, timing.window)
        result["ingest_mbit"] = _bitrate(server, stream["streamId"])
        await load.stop()
    except BaseException:
        await load.kill()
        raise
    return result


@dataclass
class Process:
    """A peer process speaking one JSON line per event (bench.whep_viewers)."""

    proc: asyncio.subprocess.Process

    @classmethod
    async def spawn(cls, *args: str) -> Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *args, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, cwd=ROOT,
        )  # fmt: skip
        return cls(proc)

    async def read(self, limit: float = 60.0) -> Result:
        assert self.proc.stdout is not None
        async with asyncio.timeout(limit):
            raw = await self.proc.stdout.readline()
        if not raw:
            raise RuntimeError(f"peer process {self.proc.pid} exited ({await self.proc.wait()})")
        msg: Result = json.loads(raw)
        return msg

    async def ask(self, command: str) -> Result:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()
        return await self.read()

    async def end(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()


async def _viewers(server: Relaycast, url: str, count: int, timing: MsTiming) -> Result:
    """``count`` WHEP viewers in one process: server CPU while they watch."""
    group = await Process.spawn("-m", "bench.whep_viewers", url, str(count))
    try:
        ready = await group.read(30.0 + 3.0 * count)
        if ready["event"] != "ready":
            raise RuntimeError(f"WHEP viewers: {ready}")
        await asyncio.sleep(timing.warmup)
        before = await group.ask("mark")
        result = await window(server.pid, timing.window)
        after = await group.ask("mark")
        seconds = timing.window
        result["viewers"] = count
        result["connected"] = after["connected"]
        result["mbit_per_viewer"] = (after["bytes"] - before["bytes"]) * 8 / seconds / 1e6 / count
        await group.ask("stop")
        return result
    finally:
        await group.end()


async def _whip(
    server: Relaycast, h264: Path, opus: Path, timing: MsTiming, steps: tuple[int, ...]
) -> list[Result]:
    """The WHIP publisher alone, then with each step of WHEP viewers."""
    stream = _stream(server, "whip")
    publisher = await Process.spawn(
        "-m", "tests.interop.webrtc_peers", server.http_base,
        stream["ingest"]["streamKey"], str(h264), str(opus),
    )  # fmt: skip
    try:
        assert publisher.proc.stdout is not None
        status = (await asyncio.wait_for(publisher.proc.stdout.readline(), 30)).strip()
        if status != b"201":
            raise RuntimeError(f"WHIP publish answered {status!r}")
        await _wait_live(server, stream["streamId"])
        await asyncio.sleep(timing.warmup)
        alone = await window(server.pid, timing.window)
        alone["ingest_mbit"] = _bitrate(server, stream["streamId"])
        url = f"{server.http_base}/whep/{stream['playback']['edgeId']}"
        return [alone, *[await _viewers(server, url, n, timing) for n in steps]]
    finally:
        await publisher.end()


async def scenario_whip(cache: Path, config: ScenarioConfig) -> list[Result]:
    timing = MsTiming.make(config.quick)
    steps = (5,) if config.quick else (5, 20)
    log("WHIP: preparing the sample without B-frames (cached after the first run)")
    flv, h264, opus = media(cache)
    server = Relaycast(extra_env=SERVER_ENV).start()
    try:
        log("WHIP: server idle")
        idle = await window(server.pid, timing.window)
        log("WHIP: one RTMP publisher")
        rtmp = await _rtmp(server, flv, timing)
        log(f"WHIP: one WHIP publisher, then WHEP viewers {', '.join(map(str, steps))}")
        whip, *watched = await _whip(server, h264, opus, timing, steps)
        log("WHIP: glass-to-glass over WHEP in Chromium")
        stream = _stream(server, "g2g")
        g2g = await glass_to_glass(
            server.http_base,
            stream["ingest"]["streamKey"],
            stream["playback"]["edgeId"],
            frames=150 if config.quick else 900,
            live=lambda: _wait_live(server, stream["streamId"]),
        )
    finally:
        server.stop()
    return [*_results(idle, rtmp, whip, watched, steps, config), _g2g(g2g, config)]


def _g2g(figures: Result, config: ScenarioConfig) -> Result:
    p95 = figures.get("p95_ms")
    met = p95 is not None and p95 <= TARGET_G2G_MS
    target = f"p95 <= {TARGET_G2G_MS:.0f} ms"
    result = line("WHEP-G2G", {"quick": config.quick}, figures, None, None, target, met, config)
    result["row"] = [
        "WHEP glass-to-glass in Chromium (WHIP in, WHEP out, loopback), p50 / p95 ms",
        f"{figures.get('p50_ms')} / {p95}" if p95 is not None else figures.get("error", "-"),
        "-",
        "-",
        target,
        "yes" if met else "**no**",
        f"{figures.get('frames', 0)} frames, max {figures.get('max_ms')} ms",
    ]
    return result


def _results(
    idle: Result,
    rtmp: Result,
    whip: Result,
    watched: list[Result],
    steps: tuple[int, ...],
    config: ScenarioConfig,
) -> list[Result]:
    base = idle["cpu_ms_per_s"]
    ours, ref = whip["cpu_ms_per_s"] - base, rtmp["cpu_ms_per_s"] - base
    ratio = ours / ref if ref > 0 else None
    delivered = whip["ingest_mbit"] > 0.8 * rtmp["ingest_mbit"]
    met = ratio is not None and ratio <= TARGET_RATIO and delivered
    target = f"<= {TARGET_RATIO} x an RTMP publisher"
    whip["cpu_ms_per_publisher_s"], rtmp["cpu_ms_per_publisher_s"] = ours, ref
    params = {"publishers": 1, "idle_cpu_ms_per_s": round(base, 2), "quick": config.quick}
    pub = line("WHIP-PUB", params, whip, rtmp, ratio, target, met, config)
    pub["row"] = [
        "WHIP: 1 x 4 Mbit/s WebRTC publisher (H.264 passthrough, Opus -> AAC), server CPU ms/s",
        f"{ours:.1f}",
        f"RTMP publisher {ref:.1f}",
        f"{ratio:.2f}" if ratio is not None else "-",
        target,
        "yes" if met else "**no**",
        f"of which the Opus -> AAC worker {whip['children_cpu_ms_per_s']:.1f}; "
        f"ingest {whip['ingest_mbit']:.2f} Mbit/s (RTMP {rtmp['ingest_mbit']:.2f}); "
        f"idle server {base:.1f} ms/s subtracted",
    ]
    out = [pub]
    for count, step in zip(steps, watched, strict=True):
        each = (step["cpu_ms_per_s"] - whip["cpu_ms_per_s"]) / count
        step["cpu_ms_per_viewer_s"] = each
        got = step["mbit_per_viewer"] > 0.8 * whip["ingest_mbit"] and step["connected"] == count
        target = "recorded (every viewer gets the stream)"
        result = line(f"WHEP-{count}", {"viewers": count}, step, None, None, target, got, config)
        result["row"] = [
            f"WHEP: {count} viewers of that stream, server CPU ms/s per viewer",
            f"{each:.2f}",
            "-",
            "-",
            target,
            "yes" if got else "**no**",
            f"{step['mbit_per_viewer']:.2f} Mbit/s per viewer, {step['connected']} connected; "
            f"total {step['cpu_ms_per_s']:.0f} ms/s",
        ]
        out.append(result)
    return out
