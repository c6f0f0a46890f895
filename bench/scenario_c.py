"""Scenario C: one publisher, 50 bus readers inside the server process.

The readers must share the server's event loop, so this scenario builds the media
plane in *this* process from its real parts (``Registry`` + ``IngestManager`` with an
in-memory stream directory + ``RtmpIngestServer`` on 127.0.0.1) and runs the publisher
as a separate load-generator process. Phases, each between two marks:

1. no readers -> the ingest cost alone;
2. ``readers`` draining readers -> CPU per reader = (phase 2 - phase 1) / readers;
3. reader 0 stops reading -> the publisher's throughput and lateness must not change,
   and memory must stay bounded: reader 0 has a small ring (``stall_ring`` frames), so
   the stall overflows it and it resyncs instead of growing.

nginx-rtmp has no equivalent of in-process readers, so there is no measured reference;
the targets are the throughput ratio (stalled / normal) and the memory bound.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from bench import procstat
from bench.plane import build_plane
from bench.scenarios import Result, ScenarioConfig, Workers, line, log, summarize_runs
from server.bus import EndOfStream, Reader

STREAM = "bench-c"
STALL_RING = 512  # frames (~6.6 s of 30 fps video + 48 kHz AAC)
MEMORY_BOUND_MIB = 64.0


async def _drain(reader: Reader) -> None:
    while not isinstance(await reader.next(), EndOfStream):
        pass


class _Window:
    """CPU of this process and publisher throughput between two marks."""

    def __init__(self, load: Workers) -> None:
        self.load = load

    async def measure(self, seconds: float, rss_samples: list[int] | None = None) -> Result:
        m0 = await self.load.mark()
        c0 = procstat.cpu_times().total
        end = asyncio.get_running_loop().time() + seconds
        while (left := end - asyncio.get_running_loop().time()) > 0:
            await asyncio.sleep(min(0.5, left))
            if rss_samples is not None:
                rss_samples.append(procstat.memory_kib()["VmRSS"])
        m1 = await self.load.mark()
        c1 = procstat.cpu_times().total
        window = m1["t"] - m0["t"]
        return {
            "cpu_core_percent": (c1 - c0) * 100 / window,
            "cpu_ms_per_s": (c1 - c0) * 1000 / window,
            "publisher_mbit": (m1["bytes"] - m0["bytes"]) * 8 / window / 1e6,
            "late_writes": m1["late_writes"] - m0["late_writes"],
            "window_s": window,
        }


async def run_c(sample_path: Path, config: ScenarioConfig) -> Result:
    plane = build_plane()
    port = await plane.rtmp.listen("127.0.0.1", 0)
    url = f"rtmp://127.0.0.1:{port}/live/c"
    load = Workers([url], sample_path, "paced", grouping=config.grouping)
    tasks: list[asyncio.Task[None]] = []
    try:
        await load.start()
        await load.go()
        await asyncio.sleep(config.c_timing.warmup)
        stream = plane.registry.get(STREAM)
        assert stream is not None, "the publisher did not open the stream"
        window = _Window(load)
        alone = await window.measure(config.c_timing.duration)
        readers = [stream.reader("stalled", "bench", max_frames=STALL_RING)]
        readers += [stream.reader(f"r{i}", "bench") for i in range(1, config.c_readers)]
        tasks = [asyncio.get_running_loop().create_task(_drain(r)) for r in readers]
        await asyncio.sleep(1.0)
        reading = await window.measure(config.c_timing.duration)
        tasks[0].cancel()  # reader 0 stops reading but stays attached
        rss_before = procstat.memory_kib()["VmRSS"]
        samples: list[int] = []
        stalled = await window.measure(config.c_stall, samples)
        stats = readers[0].stats()
        done = await load.stop()
    except BaseException:
        await load.kill()
        raise
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await plane.close()
    per_reader = (reading["cpu_ms_per_s"] - alone["cpu_ms_per_s"]) / config.c_readers
    rss_growth = (max(samples, default=rss_before) - rss_before) / 1024
    return {
        "ingest_only_cpu_ms_per_s": alone["cpu_ms_per_s"],
        "with_readers_cpu_ms_per_s": reading["cpu_ms_per_s"],
        "cpu_ms_per_reader_s": per_reader,
        "publisher_mbit_all_reading": reading["publisher_mbit"],
        "publisher_mbit_one_stalled": stalled["publisher_mbit"],
        "throughput_ratio": stalled["publisher_mbit"] / reading["publisher_mbit"],
        "late_writes_stalled": stalled["late_writes"],
        "late_max_ms": done["late_max_ms"],
        "rss_mib_before_stall": rss_before / 1024,
        "rss_growth_mib_during_stall": rss_growth,
        "stalled_reader_dropped_frames": stats.dropped_frames,
        "stalled_reader_resyncs": stats.resyncs,
        "stalled_reader_queued_items": stats.queued_items,
        "stalled_reader_queued_mib": stats.queued_bytes / 2**20,
        "publisher_errors": done["errors"],
    }


async def scenario_c(sample: Path, config: ScenarioConfig) -> list[Result]:
    runs = []
    for rep in range(config.repeats):
        log(f"C: 1 publisher, {config.c_readers} readers, run {rep + 1}/{config.repeats}")
        result = await run_c(sample, config)
        log(
            f"C: {result['cpu_ms_per_reader_s']:.3f} ms per reader-second; stalled reader: "
            f"throughput x{result['throughput_ratio']:.3f}, "
            f"RSS +{result['rss_growth_mib_during_stall']:.1f} MiB, "
            f"{result['stalled_reader_dropped_frames']} frames dropped"
        )
        runs.append(result)
    ours = summarize_runs(runs)
    ratio = min(r["throughput_ratio"] for r in runs)
    met = all(
        r["throughput_ratio"] >= 0.95
        and r["late_writes_stalled"] == 0
        and r["rss_growth_mib_during_stall"] <= MEMORY_BOUND_MIB
        and r["stalled_reader_resyncs"] >= 1
        and r["publisher_errors"] == 0
        for r in runs
    )
    params = {
        "publishers": 1,
        "readers": config.c_readers,
        "bitrate_mbit": 4.0,
        "duration_s": config.c_timing.duration,
        "stall_s": config.c_stall,
        "stalled_reader_ring_frames": STALL_RING,
        "repeats": config.repeats,
        "metric": "CPU per bus reader; ratio = publisher throughput with one reader stalled / "
        "all reading (worst run)",
    }
    reference = {
        "name": "none measured",
        "note": "nginx-rtmp has no in-process readers; for scale, protocols.md section 9 "
        "gives 1.3 ms/s per RTMP player on nginx-rtmp",
    }
    target = (
        f"throughput ratio >= 0.95, no late writes, RSS growth <= {MEMORY_BOUND_MIB:g} MiB, "
        "stalled reader resynced (bounded)"
    )
    return [line("C", params, ours, reference, ratio, target, met, config)]
