"""The RTMP ingest scenarios: each measures relaycast and the reference in the same run.

* A - N concurrent paced 4 Mbit/s publishers: server CPU per stream-second.
* B - one publisher flat out: MB ingested per server CPU-second.
* C - one publisher, 50 in-process bus readers: CPU per reader, and what happens to the
  publisher and to memory when one reader stops reading.

Servers and load generators are separate processes (C's server lives in this process,
because its readers must be in the server's loop). CPU always comes from /proc, read
at two marks inside the steady state, so start-up and shut-down are never counted.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from bench import procstat
from bench.media import PrechunkedLoop, read_flv

Result = dict[str, Any]
ROOT = Path(__file__).resolve().parent.parent
SATURATED_CORE_PERCENT = 95.0
"""A single-threaded server at this share of one core is at its limit."""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Server(Protocol):
    name: str

    @property
    def pid(self) -> int: ...

    def start(self) -> object: ...

    def stop(self) -> None: ...

    def stream_keys(self, count: int) -> list[str]: ...

    def rtmp_url(self, key: str) -> str: ...


# --------------------------------------------------------------------------- workers


class Workers:
    """Load-generator worker processes (``python -m bench.loadgen``) driven together."""

    module = "bench.loadgen"
    """The worker module; SRT scenarios use ``bench.srt_loadgen`` (same protocol)."""

    def __init__(
        self, urls: Sequence[str], sample: Path, mode: str, count: int = 1, **options: Any
    ) -> None:
        self.urls = list(urls)
        self.sample = sample
        self.mode = mode
        self.count = max(1, min(count, len(self.urls)))
        self.options = options
        self.procs: list[asyncio.subprocess.Process] = []
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-loadgen-")

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    async def start(self, limit_s: float = 120.0) -> list[Result]:
        for index in range(self.count):
            urls = self.urls[index :: self.count]
            path = Path(self._tmp.name) / f"urls-{index}.txt"
            path.write_text("\n".join(urls) + "\n")
            cmd = [sys.executable, "-m", self.module, "--urls", str(path)]
            cmd += ["--sample", str(self.sample), "--mode", self.mode]
            for name, value in self.options.items():
                if value is not None:
                    cmd += [f"--{name.replace('_', '-')}", str(value)]
            self.procs.append(
                await asyncio.create_subprocess_exec(
                    *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=ROOT
                )
            )
        return await self._collect("ready", limit_s)

    async def _send(self, command: str) -> None:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(command.encode() + b"\n")
            await proc.stdin.drain()

    async def _collect(self, event: str, limit_s: float) -> list[Result]:
        async def one(proc: asyncio.subprocess.Process) -> Result:
            assert proc.stdout is not None
            line = await proc.stdout.readline()
            if not line:
                raise RuntimeError(f"load generator {proc.pid} exited (rc {await proc.wait()})")
            msg: Result = json.loads(line)
            if msg.get("event") != event:
                raise RuntimeError(f"load generator {proc.pid}: expected {event}, got {msg}")
            return msg

        async with asyncio.timeout(limit_s):
            return list(await asyncio.gather(*(one(p) for p in self.procs)))

    async def go(self) -> None:
        await self._send("go")

    async def mark(self) -> Result:
        """Totals over all workers at this moment."""
        await self._send("mark")
        return _merge(await self._collect("mark", 30.0))

    async def stop(self) -> Result:
        await self._send("stop")
        done = _merge(await self._collect("done", 60.0))
        for proc in self.procs:
            async with asyncio.timeout(20.0):
                await proc.wait()
        self._tmp.cleanup()
        return done

    async def kill(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        self._tmp.cleanup()


def _merge(parts: list[Result]) -> Result:
    out: Result = {"t": max(p["t"] for p in parts)}
    for key in ("bytes", "writes", "late_writes", "drains", "errors", "cpu_s"):
        out[key] = sum(p[key] for p in parts)
    out["late_max_ms"] = max(p["late_max_ms"] for p in parts)
    out["first_error"] = next((p["first_error"] for p in parts if p["first_error"]), None)
    return out


# --------------------------------------------------------------------------- helpers


def summarize(values: Sequence[float], digits: int = 3) -> Result:
    """min / median / max of repeated measurements (all equal when run once)."""
    clean = [v for v in values if v is not None and not math.isnan(v)]
    if not clean:
        return {"min": None, "median": None, "max": None, "runs": []}
    return {
        "min": round(min(clean), digits),
        "median": round(statistics.median(clean), digits),
        "max": round(max(clean), digits),
        "runs": [round(v, digits) for v in clean],
    }


def summarize_runs(runs: list[Result]) -> Result:
    """Per numeric field of several run dicts: min/median/max; other fields from run 1."""
    out: Result = {}
    for key, value in runs[0].items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = summarize([r[key] for r in runs])
        else:
            out[key] = value
    return out


def median_of(summary: Result, key: str) -> float:
    value = summary[key]
    return float(value["median"]) if isinstance(value, dict) else float(value)


def ratio_of(ours: Result, reference: Result, key: str) -> float | None:
    """relaycast / reference, or None when the reference measured nothing: /proc counts
    CPU in 10 ms ticks, so a light reference over a short window can read 0."""
    theirs = median_of(reference, key)
    return median_of(ours, key) / theirs if theirs > 0 else None


# --------------------------------------------------------------------------- A and B


@functools.cache
def offered_mbit(sample: Path) -> float:
    """What each paced publisher sends on the wire, in Mbit/s."""
    return PrechunkedLoop(read_flv(sample), 1, 4096).bitrate / 1e6


@dataclass
class Timing:
    duration: float
    warmup: float
    settle: float = 1.0


async def run_paced(
    server: Server,
    sample: Path,
    publishers: int,
    timing: Timing,
    workers: int,
    grouping: str = "message",
) -> Result:
    """Scenario A, one run: N paced publishers, CPU between two marks."""
    urls = [server.rtmp_url(k) for k in server.stream_keys(publishers)]
    load = Workers(urls, sample, "paced", workers, grouping=grouping)
    try:
        ready = await load.start()
        await load.go()
        await asyncio.sleep(timing.warmup)
        m0 = await load.mark()
        # nanosecond run times: at 1 stream a server spends a few ms per second, which
        # 10 ms clock ticks cannot tell apart over a window of seconds
        c0, g0 = procstat.cpu_ns_seconds([server.pid]), procstat.cpu_seconds(load.pids)
        s0 = procstat.system_ticks()
        await asyncio.sleep(timing.duration)
        m1 = await load.mark()
        c1, g1 = procstat.cpu_ns_seconds([server.pid]), procstat.cpu_seconds(load.pids)
        s1 = procstat.system_ticks()
        memory = procstat.memory_kib(server.pid)
        done = await load.stop()
    except BaseException:
        await load.kill()
        raise
    seconds = m1["t"] - m0["t"]
    stream_seconds = publishers * seconds
    core_percent = (c1 - c0) * 100 / seconds
    mbit = (m1["bytes"] - m0["bytes"]) * 8 / stream_seconds / 1e6
    return {
        "cpu_ms_per_stream_s": (c1 - c0) * 1000 / stream_seconds,
        "cpu_core_percent": core_percent,
        "mbit_per_publisher": mbit,
        # A server that cannot keep up takes less than offered (TCP backpressure) and
        # its CPU per stream-second then understates the real cost.
        "saturated": core_percent >= SATURATED_CORE_PERCENT or mbit < 0.98 * offered_mbit(sample),
        "late_writes": m1["late_writes"] - m0["late_writes"],
        "late_max_ms": done["late_max_ms"],
        "publisher_errors": done["errors"],
        "first_error": done["first_error"],
        "rss_mib": memory.get("VmRSS", 0) / 1024,
        "generator_core_percent": (g1 - g0) * 100 / seconds,
        "generator_workers": len(ready),
        "window_s": seconds,
        **procstat.busy_and_steal_percent(s0, s1),
    }


async def run_flat(server: Server, sample: Path, timing: Timing) -> Result:
    """Scenario B, one run: one publisher flat out. All bytes sent after ``go`` are
    counted, and the server's CPU is read after it had ``settle`` seconds to finish
    them, so bytes still in socket buffers are neither lost nor free."""
    urls = [server.rtmp_url(k) for k in server.stream_keys(1)]
    load = Workers(urls, sample, "flat", 1, write_buffer_high=1 << 20)
    try:
        await load.start()
        c0, g0 = procstat.cpu_times(server.pid).total, procstat.cpu_seconds(load.pids)
        s0 = procstat.system_ticks()
        m0 = await load.mark()
        await load.go()
        await asyncio.sleep(timing.duration)
        g1 = procstat.cpu_seconds(load.pids)
        m1 = await load.mark()
        done = await load.stop()
        await asyncio.sleep(timing.settle)
        c1 = procstat.cpu_times(server.pid).total
        s1 = procstat.system_ticks()
    except BaseException:
        await load.kill()
        raise
    sent = done["bytes"] - m0["bytes"]
    seconds = m1["t"] - m0["t"]
    cpu = c1 - c0
    return {
        "mb_per_cpu_s": sent / 1e6 / cpu if cpu > 0 else float("nan"),
        "mb_per_s": sent / 1e6 / seconds,
        "server_cpu_s": cpu,
        "mbytes": sent / 1e6,
        "publisher_errors": done["errors"],
        "first_error": done["first_error"],
        "generator_core_percent": (g1 - g0) * 100 / seconds,
        "window_s": seconds,
        **procstat.busy_and_steal_percent(s0, s1),
    }


@dataclass
class ScenarioConfig:
    quick: bool
    repeats: int
    publishers: list[int]
    a_timing: Timing
    b_timing: Timing
    c_timing: Timing
    c_stall: float
    c_readers: int = 50
    grouping: str = "message"
    publishers_per_worker: int = 100
    machine: Result = field(default_factory=procstat.machine)

    @classmethod
    def make(cls, quick: bool, repeats: int | None = None) -> ScenarioConfig:
        if quick:
            return cls(
                quick=True,
                repeats=repeats or 1,
                publishers=[1, 10, 50],
                a_timing=Timing(duration=6.0, warmup=1.5),
                b_timing=Timing(duration=4.0, warmup=0.0),
                c_timing=Timing(duration=5.0, warmup=1.5),
                c_stall=8.0,
            )
        return cls(
            quick=False,
            repeats=repeats or 3,
            publishers=[1, 10, 50, 200],
            a_timing=Timing(duration=30.0, warmup=3.0),
            b_timing=Timing(duration=10.0, warmup=0.0),
            c_timing=Timing(duration=15.0, warmup=3.0),
            c_stall=30.0,
        )


def line(
    scenario: str,
    params: Result,
    relaycast: Result,
    reference: Result | None,
    ratio: float | None,
    target: str,
    met: bool,
    config: ScenarioConfig,
) -> Result:
    return {
        "scenario": scenario,
        "params": params,
        "relaycast": relaycast,
        "reference": reference,
        "ratio": None if ratio is None else round(ratio, 3),
        "target": target,
        "met": met,
        "machine": config.machine,
        "at": datetime.now().isoformat(timespec="seconds"),
    }


_FLOOR_TARGET = "none: context (a bare uvloop reader, nothing parsed)"


A_TARGET = 1.5
"""Issue 20: the RTMP ingest plane at most 1.5x nginx-rtmp's CPU at every count."""
HLS_A_TARGETS = {1: 1.5}
"""Issue 20, HLS-A: the whole server at most 1.5x nginx-rtmp with 'hls on' at 1 stream,
1.0x from 10 streams (``--target serve``)."""


def a_target(target: str, publishers: int) -> float:
    """The ratio scenario A's line must not exceed."""
    if target.removesuffix("-pure") == "serve":
        return HLS_A_TARGETS.get(publishers, 1.0)
    return A_TARGET


async def scenario_a(
    relaycast: Server,
    reference: Server,
    sample: Path,
    config: ScenarioConfig,
    target: str,
    pure: Server | None = None,
) -> list[Result]:
    """``pure``: relaycast's pure-Python twin, measured interleaved with the other two
    and printed beside the compiled figure (it does not decide ``met``)."""
    runs: dict[tuple[str, int], list[Result]] = {}
    servers = [s for s in (relaycast, pure, reference) if s is not None]
    for rep in range(config.repeats):
        for n in config.publishers:
            workers = max(1, math.ceil(n / config.publishers_per_worker))
            for server in servers:  # interleaved: drift hits all alike
                log(f"A: {server.name}, {n} publishers, run {rep + 1}/{config.repeats}")
                result = await run_paced(
                    server, sample, n, config.a_timing, workers, config.grouping
                )
                log(
                    f"A: {server.name} n={n}: {result['cpu_ms_per_stream_s']:.2f} ms/stream-s, "
                    f"{result['mbit_per_publisher']:.2f} Mbit/s each, "
                    f"generator {result['generator_core_percent']:.0f}% of a core"
                )
                runs.setdefault((server.name, n), []).append(result)
    out = []
    for n in config.publishers:
        ours = summarize_runs(runs[(relaycast.name, n)])
        ref = summarize_runs(runs[(reference.name, n)])
        ratio = ratio_of(ours, ref, "cpu_ms_per_stream_s")
        saturated = any(r["saturated"] for r in runs[(relaycast.name, n)])
        ours["saturated"] = saturated
        ref["saturated"] = any(r["saturated"] for r in runs[(reference.name, n)])
        params = {
            "target": target,
            "relaycast": relaycast.name,
            "reference": reference.name,
            "publishers": n,
            "bitrate_mbit": round(offered_mbit(sample), 3),
            "duration_s": config.a_timing.duration,
            "warmup_s": config.a_timing.warmup,
            "writes": config.grouping,
            "repeats": config.repeats,
            "metric": "server CPU ms per stream-second (ratio = relaycast / nginx-rtmp)",
        }
        ref["name"] = reference.name
        limit = a_target(target, n)
        target_text = f"ratio <= {limit:g} (and relaycast not saturated)"
        met = ratio is not None and ratio <= limit and not saturated
        if target == "floor":
            target_text, met = _FLOOR_TARGET, True
        result = line("A", params, ours, ref, ratio, target_text, met, config)
        if pure is not None:
            _add_pure(result, summarize_runs(runs[(pure.name, n)]), pure.name, ref)
        out.append(result)
    return out


def _add_pure(result: Result, twin: Result, name: str, reference: Result) -> None:
    """Put the pure-Python twin's figures and ratio on a line beside the compiled ones."""
    key = "cpu_ms_per_stream_s" if result["scenario"] == "A" else "mb_per_cpu_s"
    twin["name"] = name
    result["relaycast_pure"] = twin
    ratio = ratio_of(twin, reference, key)
    result["ratio_pure"] = None if ratio is None else round(ratio, 3)
    result["params"]["relaycast_pure"] = name


async def scenario_b(
    relaycast: Server,
    reference: Server,
    sample: Path,
    config: ScenarioConfig,
    target: str,
    pure: Server | None = None,
) -> list[Result]:
    runs: dict[str, list[Result]] = {}
    servers = [s for s in (relaycast, pure, reference) if s is not None]
    for rep in range(config.repeats):
        for server in servers:
            log(f"B: {server.name} flat out, run {rep + 1}/{config.repeats}")
            result = await run_flat(server, sample, config.b_timing)
            log(
                f"B: {server.name}: {result['mb_per_cpu_s']:.0f} MB per CPU-s "
                f"({result['mb_per_s']:.0f} MB/s wall)"
            )
            runs.setdefault(server.name, []).append(result)
    ours, ref = summarize_runs(runs[relaycast.name]), summarize_runs(runs[reference.name])
    ratio = ratio_of(ours, ref, "mb_per_cpu_s")
    ref["name"] = reference.name
    params = {
        "target": target,
        "relaycast": relaycast.name,
        "reference": reference.name,
        "publishers": 1,
        "duration_s": config.b_timing.duration,
        "repeats": config.repeats,
        "metric": "MB ingested per server CPU-second (ratio = relaycast / nginx-rtmp)",
    }
    if target == "floor":
        return [line("B", params, ours, ref, ratio, _FLOOR_TARGET, True, config)]
    met = ratio is not None and ratio >= 0.3
    result = line("B", params, ours, ref, ratio, "ratio >= 0.3", met, config)
    if pure is not None:
        _add_pure(result, summarize_runs(runs[pure.name]), pure.name, ref)
    return [result]


ScenarioFn = Callable[[Server, Server, Path, ScenarioConfig], Any]
