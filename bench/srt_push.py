"""SRT-PUSH (issue 21): relaycast pushing one SRT publish to 10 SRT destinations,
server CPU per destination, against srt-live-transmit relaying the same publish to
one destination.

The input is the same for both: one paced SRT publisher (``bench.srt_loadgen``, the
4 Mbit/s sample as MPEG-TS). Destinations are ``srt-live-transmit`` listeners
writing to a pipe that is counted (to show they receive), in their own processes.
relaycast (the whole ``relaycast serve``) is measured with the stream's
destinations disabled, then enabled; per-destination cost = (CPU with 10 - CPU with
none) / 10, as for the SRT readers of ``bench.play_srt``. The reference is one
``srt-live-transmit`` per destination, listening for the publisher and calling its
destination (``srt-live-transmit`` has one output): one process's whole CPU,
receiving included, is what relaying to one destination costs it. Target: <= 1.0x.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import subprocess
import threading
import time
from pathlib import Path

from bench import procstat
from bench.multistream import MsTiming
from bench.play_srt import _SRT_LINE, _publish, _spawn, _stop
from bench.scenarios import Result, ScenarioConfig, line, log
from bench.servers import Relaycast
from bench.srt_scenarios import LATENCY_MS, STREAMID, SrtWorkers, free_udp_port

DESTINATIONS = 10
TARGET_RATIO = 1.0
MIN_MBIT = 3.0  # per destination: the 4 Mbit/s sample arrived


class Listener:
    """An srt-live-transmit listener (a destination); what it receives is counted."""

    def __init__(self) -> None:
        self.port = free_udp_port()
        url = f"srt://127.0.0.1:{self.port}?mode=listener&latency={LATENCY_MS}"
        self.proc = _spawn(url, "file://con", stdout=subprocess.PIPE)
        self.bytes = 0
        threading.Thread(target=self._count, daemon=True).start()

    def _count(self) -> None:
        out = self.proc.stdout
        assert isinstance(out, io.BufferedReader)  # Popen's default buffering
        while data := out.read1(1 << 16):
            self.bytes += len(data)


async def _window(pids: list[int], sinks: list[Listener], seconds: float) -> Result:
    b0 = sum(s.bytes for s in sinks)
    c0, t0 = procstat.cpu_ns_seconds(pids), time.monotonic()
    await asyncio.sleep(seconds)
    c1, t1 = procstat.cpu_ns_seconds(pids), time.monotonic()
    got = sum(s.bytes for s in sinks) - b0
    return {
        "cpu_ms_per_s": (c1 - c0) * 1000 / (t1 - t0),
        "destinations": len(sinks),
        "mbit_per_destination": got * 8 / (t1 - t0) / 1e6 / len(sinks) if sinks else 0.0,
    }


def _enable(server: Relaycast, stream_id: str, ids: list[str], enabled: bool) -> None:
    for destination in ids:
        path = f"/v1/live-streams/{stream_id}/destinations/{destination}"
        server.api("PATCH", path, {"enabled": enabled})


async def relaycast_push(sample: Path, timing: MsTiming) -> tuple[Result, Result]:
    """(10 destinations enabled, none enabled) on one server and one publish."""
    sinks = [Listener() for _ in range(DESTINATIONS)]
    server = Relaycast().start()
    load: SrtWorkers | None = None
    try:
        match = _SRT_LINE.search("".join(server.stderr))
        if match is None:
            raise RuntimeError("relaycast logged no SRT listener")
        made = server.api("POST", "/v1/live-streams", {"name": "srt-push"})
        stream_id, key = made["streamId"], made["ingest"]["streamKey"]
        ids = []
        for i, sink in enumerate(sinks):
            body = {"url": f"srt://127.0.0.1:{sink.port}?latency={LATENCY_MS}", "enabled": False}
            body["name"] = f"slt-{i}"
            made = server.api("POST", f"/v1/live-streams/{stream_id}/destinations", body)
            ids.append(made["destinationId"])
        url = f"srt://127.0.0.1:{match[1]}?streamid=" + STREAMID.format(key=key)
        load = await _publish(url, sample)
        await asyncio.sleep(timing.warmup)
        base = await _window([server.pid], [], timing.window)
        _enable(server, stream_id, ids, True)
        await asyncio.sleep(timing.warmup)
        if any(s.proc.poll() is not None for s in sinks):
            raise RuntimeError("an srt-live-transmit destination exited")
        pushed = await _window([server.pid], sinks, timing.window)
        doc = server.api("GET", f"/v1/live-streams/{stream_id}/destinations")
        pushed["states"] = [d["status"]["state"] for d in doc["destinations"]]
        await load.stop()
        load = None
        return pushed, base
    finally:
        if load is not None:
            with contextlib.suppress(Exception):
                await load.kill()
        server.stop()
        _stop([s.proc for s in sinks])


async def slt_relays(sample: Path, timing: MsTiming) -> Result:
    """srt-live-transmit relaying the publish to one destination: its whole CPU."""
    sink = Listener()
    inbound = free_udp_port()
    relay = _spawn(
        f"srt://127.0.0.1:{inbound}?mode=listener&latency={LATENCY_MS}",
        f"srt://127.0.0.1:{sink.port}?latency={LATENCY_MS}",
    )
    load: SrtWorkers | None = None
    try:
        await asyncio.sleep(0.3)  # bind
        streamid = STREAMID.format(key="relay")
        load = await _publish(f"srt://127.0.0.1:{inbound}?streamid={streamid}", sample)
        await asyncio.sleep(timing.warmup)
        if relay.poll() is not None or sink.proc.poll() is not None:
            raise RuntimeError("srt-live-transmit (relay or destination) exited")
        result = await _window([relay.pid], [sink], timing.window)
        await load.stop()
        load = None
        return result
    finally:
        if load is not None:
            with contextlib.suppress(Exception):
                await load.kill()
        _stop([relay, sink.proc])


async def scenario_srt_push(sample: Path, config: ScenarioConfig) -> list[Result]:
    timing = MsTiming.make(config.quick)
    runs: list[tuple[Result, Result, Result]] = []
    for rep in range(config.repeats):
        log(f"SRT-PUSH: relaycast, 1 SRT publisher -> {DESTINATIONS} destinations, run {rep + 1}")
        pushed, base = await relaycast_push(sample, timing)
        log("SRT-PUSH: srt-live-transmit relaying the same publish to one destination")
        relay = await slt_relays(sample, timing)
        pushed["cpu_ms_per_destination_s"] = (
            pushed["cpu_ms_per_s"] - base["cpu_ms_per_s"]
        ) / DESTINATIONS
        pushed["base_cpu_ms_per_s"] = base["cpu_ms_per_s"]
        relay["cpu_ms_per_destination_s"] = relay["cpu_ms_per_s"]
        log(
            f"SRT-PUSH: relaycast {pushed['cpu_ms_per_destination_s']:.2f} ms/s per "
            f"destination ({pushed['mbit_per_destination']:.2f} Mbit/s each, states "
            f"{sorted(set(pushed['states']))}), srt-live-transmit {relay['cpu_ms_per_s']:.2f}"
        )
        runs.append((pushed, base, relay))
    return [_line(runs, config)]


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _line(runs: list[tuple[Result, Result, Result]], config: ScenarioConfig) -> Result:
    ours = _median([p["cpu_ms_per_destination_s"] for p, _, _ in runs])
    ref = _median([r["cpu_ms_per_s"] for _, _, r in runs])
    mbit = min(p["mbit_per_destination"] for p, _, _ in runs)
    all_active = all(state == "active" for p, _, _ in runs for state in p["states"])
    ratio = ours / ref if ref > 0 else None
    met = ratio is not None and ratio <= TARGET_RATIO and mbit > MIN_MBIT and all_active
    target = f"<= {TARGET_RATIO} x srt-live-transmit relaying to one destination"
    params = {"publishers": 1, "destinations": DESTINATIONS, "repeats": config.repeats}
    mine = {**runs[-1][0], "cpu_ms_per_destination_s": ours, "samples": [p for p, _, _ in runs]}
    theirs = {**runs[-1][2], "samples": [r for _, _, r in runs]}
    result = line("SRT-PUSH", params, mine, theirs, ratio, target, met, config)
    result["row"] = [
        f"SRT-PUSH: 1 x 4 Mbit/s SRT -> {DESTINATIONS} SRT destinations, server CPU ms/s "
        "per destination",
        f"{ours:.2f}",
        f"{ref:.2f}",
        f"{ratio:.2f}" if ratio is not None else "-",
        target,
        "yes" if met else "**no**",
        f"{mbit:.1f} Mbit/s per destination at least; relaycast without destinations "
        f"{_median([b['cpu_ms_per_s'] for _, b, _ in runs]):.0f} ms/s",
    ]
    return result
