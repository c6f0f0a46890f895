"""The SRT ingest scenarios (issue 5): relaycast's SRT ingest plane against
``srt-live-transmit`` as listener, measured in the same run.

* SRT-A - N concurrent paced 4 Mbit/s SRT publishers (our caller as the load
  generator), N = 1, 10, 50, 100: server CPU per stream-second, ratio to
  srt-live-transmit (issue 21's target: <= 0.75x at every count, not saturated).
* SRT-B - the same through a relay that drops 2 % of the caller-to-server data
  packets (N = 1, 10, 50), and 5 % at 10 publishers: the recovered-in-time ratio
  of the drops in the measured window (judged by the relay, see
  :mod:`bench.srt_relay`), target >= srt-live-transmit's - 0.005, and the CPU under
  loss.

``python -m bench --scenario srt-a|srt-b [--quick] [--publishers N,...]`` (explicit
publisher counts replace the defaults; the 5 % row then runs at each of them too).
srt-live-transmit
serves one caller per process, so the reference is N processes (one per publisher,
listening on its own port, writing to /dev/null) and its CPU is their sum; relaycast
is one process (:mod:`bench.srt_plane`) with every publisher on one port.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from bench import procstat
from bench.media import read_flv, sample_frames
from bench.scenarios import (
    ROOT,
    SATURATED_CORE_PERCENT,
    Result,
    ScenarioConfig,
    Timing,
    Workers,
    log,
    median_of,
    ratio_of,
    summarize_runs,
)
from bench.scenarios import line as result_line
from bench.srt_loadgen import TsLoop
from bench.srt_relay import SETTLED_S

LOSS = 0.02
HEAVY_LOSS = 0.05
A_COUNTS = [1, 10, 50, 100]
B_COUNTS = [1, 10, 50]
HEAVY_COUNTS = [10]  # SRT-B at HEAVY_LOSS
QUICK_A_COUNTS = [1, 10, 50]
CPU_RATIO_TARGET = 0.75  # relaycast / srt-live-transmit, server CPU per stream-second
RECOVERY_MARGIN = 0.005  # recovered-in-time ratio may trail srt-live-transmit's by this
LATENCY_MS = 120  # libsrt's default, and the SRT ingest's
PUBLISHERS_PER_WORKER = 25
LAG_LIMIT_MS = 200.0
STREAMID = "#!::r=live/{key},m=publish"
_EXTRA = ("packets_sent", "packets_retransmitted", "packets_send_dropped")


class SrtServer(Protocol):
    name: str

    def start(self) -> object: ...

    def stop(self) -> None: ...

    def prepare(self, count: int) -> list[tuple[int, str]]:
        """(UDP port, URL query) per publisher, ready to be called."""
        ...

    @property
    def pids(self) -> list[int]: ...

    def release(self) -> None:
        """After a run: drop per-run resources (reference listeners)."""
        ...


def _pump(stream: Any, sink: list[str]) -> None:
    for text in iter(stream.readline, ""):
        sink.append(text)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RelaycastSrtIngest:
    """``python -m bench.srt_plane``: one process, one port, a key per publisher."""

    name = "relaycast-srt-ingest"

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.stderr: list[str] = []
        self.port = 0

    def start(self, timeout: float = 20.0) -> RelaycastSrtIngest:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.srt_plane"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        threading.Thread(target=_pump, args=(self.proc.stderr, self.stderr), daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for text in self.stderr:
                if "listening srt srt://" in text:
                    self.port = int(text.rsplit(":", 1)[1])
                    return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("bench.srt_plane did not start:\n" + "".join(self.stderr)[-3000:])

    @property
    def pids(self) -> list[int]:
        assert self.proc is not None
        return [self.proc.pid]

    def prepare(self, count: int) -> list[tuple[int, str]]:
        return [(self.port, "streamid=" + STREAMID.format(key=f"k{i}")) for i in range(count)]

    def release(self) -> None:
        return None

    def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class SrtLiveTransmit:
    """N ``srt-live-transmit`` listeners (libsrt 1.5.1), one per publisher, each
    writing what it receives to /dev/null; started fresh for every run."""

    name = "srt-live-transmit"

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.program = shutil.which("srt-live-transmit") or ""

    def start(self) -> SrtLiveTransmit:
        if not self.program:
            raise RuntimeError("srt-live-transmit missing: apt-get install srt-tools")
        return self

    def prepare(self, count: int) -> list[tuple[int, str]]:
        out = []
        for i in range(count):
            port = free_udp_port()
            url = f"srt://127.0.0.1:{port}?mode=listener&latency={LATENCY_MS}"
            self.procs.append(
                subprocess.Popen(
                    [self.program, "-q", url, "file://con"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            out.append((port, "streamid=" + STREAMID.format(key=f"k{i}")))
        time.sleep(0.3)  # bind; callers re-send their induction anyway
        return out

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def release(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []

    def stop(self) -> None:
        self.release()


# --------------------------------------------------------------------------- processes


class SrtWorkers(Workers):
    """:class:`Workers` running :mod:`bench.srt_loadgen`, merging its link counters too."""

    module = "bench.srt_loadgen"

    async def mark(self) -> Result:
        await self._send("mark")
        return _merge_srt(await self._collect("mark", 30.0))

    async def stop(self) -> Result:
        await self._send("stop")
        parts = await self._collect("done", 60.0)
        for proc in self.procs:
            async with asyncio.timeout(20.0):
                await proc.wait()
        self._tmp.cleanup()
        return _merge_srt(parts)


def _merge_srt(parts: list[Result]) -> Result:
    out: Result = {"t": max(p["t"] for p in parts)}
    for key in ("bytes", "writes", "late_writes", "drains", "errors", "cpu_s", *_EXTRA):
        out[key] = sum(p[key] for p in parts)
    out["late_max_ms"] = max(p["late_max_ms"] for p in parts)
    out["first_error"] = next((p["first_error"] for p in parts if p["first_error"]), None)
    return out


class Relay:
    """``python -m bench.srt_relay`` in front of the given ports."""

    def __init__(self, ports: list[int], loss: float) -> None:
        self.targets = sorted(set(ports))
        self.loss = loss
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> dict[int, int]:
        cmd = [sys.executable, "-m", "bench.srt_relay", *map(str, self.targets)]
        cmd += ["--loss", str(self.loss), "--latency", str(LATENCY_MS)]
        self.proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=ROOT
        )
        ready = await self._read("ready")
        return {int(k): int(v) for k, v in ready["ports"].items()}

    async def _read(self, event: str) -> Result:
        assert self.proc is not None and self.proc.stdout is not None
        async with asyncio.timeout(30.0):
            raw = await self.proc.stdout.readline()
        if not raw:
            raise RuntimeError("the relay exited")
        msg: Result = json.loads(raw)
        if msg.get("event") != event:
            raise RuntimeError(f"relay: expected {event}, got {msg}")
        return msg

    async def command(self, command: str, event: str) -> Result:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()
        return await self._read(event)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def stop(self) -> Result:
        done = await self.command("stop", "done")
        assert self.proc is not None
        async with asyncio.timeout(10.0):
            await self.proc.wait()
        return done

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


# --------------------------------------------------------------------------- one run


def udp_drops(ports: set[int]) -> int:
    """Datagrams the kernel dropped because these local UDP ports' receive buffers
    were full (``drops`` column of /proc/net/udp): a server that fell behind. UDP has
    no backpressure, so this -- not its CPU share -- says it could not keep up (on a
    shared machine a one-thread server can be starved well below 100 % of a core)."""
    total = 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as fh:
                rows = fh.readlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            fields = row.split()
            if int(fields[1].rsplit(":", 1)[1], 16) in ports:
                total += int(fields[-1])
    return total


def judged(before: Result, after: Result) -> Result:
    """The relay's verdict on one window: the difference of two of its marks. A drop
    counts once settled (recovered, or lost for :data:`SETTLED_S`), so ``after``
    is taken that long after the window's end, with the publishers still sending."""
    out: Result = {
        key: after[key] - before[key]
        for key in ("dropped", "recovered", "recovered_in_time", "unrecovered")
    }
    settled = out["recovered"] + out["unrecovered"]
    out["recovered_ratio"] = round(out["recovered_in_time"] / settled, 5) if settled else None
    out["recovery_ms_median"] = after["recovery_ms_median"]
    return out


async def run_srt(
    server: SrtServer, sample: Path, publishers: int, timing: Timing, loss: float
) -> Result:
    """N paced SRT publishers (through the lossy relay when ``loss``), CPU between two
    marks inside the steady state."""
    targets = server.prepare(publishers)
    ports = {port for port, _ in targets}
    relay = Relay([port for port, _ in targets], loss) if loss else None
    workers = max(1, math.ceil(publishers / PUBLISHERS_PER_WORKER))
    load: SrtWorkers | None = None
    try:
        mapping = await relay.start() if relay is not None else {}
        urls = [f"srt://127.0.0.1:{mapping.get(p, p)}?{query}" for p, query in targets]
        load = SrtWorkers(urls, sample, "paced", workers)
        ready = await load.start()
        await load.go()
        await asyncio.sleep(timing.warmup)
        m0 = await load.mark()
        p0 = await relay.command("mark", "mark") if relay is not None else None
        c0, g0 = procstat.cpu_seconds(server.pids), procstat.cpu_seconds(load.pids)
        s0, d0 = procstat.system_ticks(), udp_drops(ports)
        r0 = udp_drops(set(mapping.values()))
        await asyncio.sleep(timing.duration)
        m1 = await load.mark()
        c1, g1 = procstat.cpu_seconds(server.pids), procstat.cpu_seconds(load.pids)
        s1, d1 = procstat.system_ticks(), udp_drops(ports)
        r1 = udp_drops(set(mapping.values()))
        path: Result | None = None
        if relay is not None and p0 is not None:
            # the window's drops settle while the publishers go on: losses of the
            # shutdown (nobody retransmits them any more) are no server's doing
            await asyncio.sleep(SETTLED_S + 0.2)
            path = judged(p0, await relay.command("mark", "mark"))
        done = await load.stop()
        if relay is not None:
            await relay.stop()
    except BaseException:
        if load is not None:
            await load.kill()
        if relay is not None:
            await relay.kill()
        raise
    finally:
        server.release()
    seconds = m1["t"] - m0["t"]
    stream_seconds = publishers * seconds
    core_percent = (c1 - c0) * 100 / seconds
    sent = m1["packets_sent"] - m0["packets_sent"]
    rexmit = m1["packets_retransmitted"] - m0["packets_retransmitted"]
    result: Result = {
        "cpu_ms_per_stream_s": (c1 - c0) * 1000 / stream_seconds,
        "cpu_core_percent": core_percent,
        "mbit_per_publisher": (m1["bytes"] - m0["bytes"]) * 8 / stream_seconds / 1e6,
        "socket_drops": d1 - d0,
        # at the lossy relay's ports (it judges what it received; 0 expected)
        "relay_socket_drops": r1 - r0,
        "saturated": d1 > d0 or (len(server.pids) == 1 and core_percent >= SATURATED_CORE_PERCENT),
        "packets_per_s": sent / seconds,
        "retransmitted_percent": rexmit * 100 / sent if sent else 0.0,
        "send_dropped": m1["packets_send_dropped"] - m0["packets_send_dropped"],
        "late_writes": m1["late_writes"] - m0["late_writes"],
        "late_max_ms": done["late_max_ms"],
        # A generator that fell behind (its loop starved: these machines are shared)
        # sends bursts and lets its send buffer age out: the run measured that, not the
        # server. Its result is reported but cannot meet a target.
        "generator_lagging": done["late_max_ms"] > LAG_LIMIT_MS,
        "publisher_errors": done["errors"],
        "first_error": done["first_error"],
        "generator_core_percent": (g1 - g0) * 100 / seconds,
        "generator_workers": len(ready),
        "window_s": seconds,
        **procstat.busy_and_steal_percent(s0, s1),
    }
    if path is not None:
        for key in ("dropped", "recovered", "recovered_in_time", "unrecovered"):
            result[key] = path[key]
        ratio = path["recovered_ratio"]
        result["recovered_ratio"] = float("nan") if ratio is None else ratio
        result["recovery_ms_median"] = path["recovery_ms_median"] or float("nan")
    return result


# --------------------------------------------------------------------------- scenarios


def offered_mbit(sample: Path) -> float:
    return TsLoop(sample_frames(read_flv(sample))).bitrate / 1e6


def planned_runs(
    wanted: str, quick: bool, publishers: list[int] | None
) -> list[tuple[str, float, list[int]]]:
    """(scenario, loss, publisher counts) for each row group: the issue's rows unless
    ``publishers`` names the counts."""
    plan: list[tuple[str, float, list[int]]] = []
    if "A" in wanted:
        plan.append(("A", 0.0, publishers or (QUICK_A_COUNTS if quick else A_COUNTS)))
    if "B" in wanted:
        plan.append(("B", LOSS, publishers or B_COUNTS))
        plan.append(("B", HEAVY_LOSS, publishers or HEAVY_COUNTS))
    return plan


async def srt_scenarios(
    sample: Path, config: ScenarioConfig, wanted: str, publishers: list[int] | None = None
) -> list[Result]:
    """SRT-A and/or SRT-B ("A", "B" in ``wanted``), ours and the reference interleaved."""
    ours, reference = RelaycastSrtIngest(), SrtLiveTransmit()
    out: list[Result] = []
    try:
        ours.start()
        reference.start()
        bitrate = round(offered_mbit(sample), 3)
        for scenario, loss, counts in planned_runs(wanted, config.quick, publishers):
            runs = await _collect(ours, reference, sample, config, counts, loss, scenario)
            out += _lines(scenario, runs, ours, reference, config, counts, loss, bitrate)
    finally:
        ours.stop()
        reference.stop()
    return out


async def _collect(
    ours: SrtServer,
    reference: SrtServer,
    sample: Path,
    config: ScenarioConfig,
    counts: list[int],
    loss: float,
    scenario: str,
) -> dict[tuple[str, int], list[Result]]:
    runs: dict[tuple[str, int], list[Result]] = {}
    for rep in range(config.repeats):
        for n in counts:
            for server in (ours, reference):  # interleaved: drift hits both alike
                log(f"SRT-{scenario}: {server.name}, {n} publishers, run {rep + 1}")
                result = await run_srt(server, sample, n, config.a_timing, loss)
                extra = (
                    f", recovered {result['recovered_ratio']:.4f}"
                    if "recovered_ratio" in result
                    else ""
                )
                log(
                    f"SRT-{scenario}: {server.name} n={n}: "
                    f"{result['cpu_ms_per_stream_s']:.2f} ms/stream-s, "
                    f"{result['mbit_per_publisher']:.2f} Mbit/s each, "
                    f"rexmit {result['retransmitted_percent']:.2f}%{extra}, "
                    f"generator late by up to {result['late_max_ms']:.0f} ms, "
                    f"{result['socket_drops']} datagrams dropped at the server's socket"
                    + (f", {result['relay_socket_drops']} at the relay's" if loss else "")
                )
                runs.setdefault((server.name, n), []).append(result)
    return runs


def _lines(
    scenario: str,
    runs: dict[tuple[str, int], list[Result]],
    ours: SrtServer,
    reference: SrtServer,
    config: ScenarioConfig,
    counts: list[int],
    loss: float,
    bitrate: float,
) -> list[Result]:
    out = []
    for n in counts:
        mine = summarize_runs(runs[(ours.name, n)])
        ref = summarize_runs(runs[(reference.name, n)])
        ratio = ratio_of(mine, ref, "cpu_ms_per_stream_s")
        saturated = any(r["saturated"] for r in runs[(ours.name, n)])
        errors = any(r["publisher_errors"] for r in runs[(ours.name, n)])
        both = (*runs[(ours.name, n)], *runs[(reference.name, n)])
        lagging = any(r["generator_lagging"] for r in both)
        mine["generator_lagging"] = lagging
        mine["saturated"] = saturated
        ref["saturated"] = any(r["saturated"] for r in runs[(reference.name, n)])
        ref["name"] = reference.name
        params = {
            "target": "srt",
            "relaycast": ours.name,
            "reference": reference.name,
            "publishers": n,
            "bitrate_mbit": bitrate,
            "loss": loss,
            "latency_ms": LATENCY_MS,
            "duration_s": config.a_timing.duration,
            "warmup_s": config.a_timing.warmup,
            "repeats": config.repeats,
            "metric": "server CPU ms per stream-second (ratio = relaycast / srt-live-transmit)",
        }
        clean = not saturated and not errors and not lagging
        if scenario == "A":
            target = (
                f"ratio <= {CPU_RATIO_TARGET} (relaycast not saturated, no publisher "
                "errors, no lag)"
            )
            met = ratio is not None and ratio <= CPU_RATIO_TARGET and clean
        else:
            ours_recovered = median_of(mine, "recovered_ratio")
            ref_recovered = median_of(ref, "recovered_ratio")
            target = (
                f"recovered-in-time ratio >= srt-live-transmit's - {RECOVERY_MARGIN} "
                "(relaycast not saturated, no publisher errors, no generator lag)"
            )
            # NaN (no packet dropped in the window) compares False: not met
            met = ours_recovered >= ref_recovered - RECOVERY_MARGIN and clean
        out.append(result_line(f"SRT-{scenario}", params, mine, ref, ratio, target, met, config))
    return out
