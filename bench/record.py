"""Recording cost: whole-server CPU with 10 recorded streams against 10 unrecorded ones.

Ten paced 4 Mbit/s RTMP publishers to streams without recording, then, on a fresh
``relaycast serve``, ten to streams with ``recording: true``; the pair is run
``repeats`` times (3, quick 1) and each side's median run is compared, since on a
shared machine one run's background load moves a ratio more than recording does.
The server packages HLS in both runs, so the difference is what recording costs: a
bus reader per stream, fragment building and the writes (on the recorder's threads,
counted in the process CPU). Target: recording on <= 1.15 x recording off. The
recordings are finished (probed, remuxed) after the measured window, not inside it.
At the window's end, ``/metrics`` gives what the recorder wrote against what ingest
received: near 1 when every stream is written at its bitrate (it trails by the
fragment being built, about ``recording.fragment_seconds`` to a GOP per stream).
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

from bench.multistream import MsTiming, run_publishers
from bench.scenarios import Result, ScenarioConfig, line, log
from bench.servers import Relaycast

STREAMS = 10
TARGET_RATIO = 1.15
SERVER_ENV = {"RELAYCAST_SRT__PORT": "0", "RELAYCAST_RECORDING__MIN_FREE_BYTES": "0"}


def _streams(server: Relaycast, recording: bool) -> list[str]:
    urls = []
    for i in range(STREAMS):
        body = {"name": f"rec-{int(recording)}-{i}", "recording": recording}
        made = server.api("POST", "/v1/live-streams", {**body, "reconnectWindowSeconds": 0})
        urls.append(server.rtmp_url(made["ingest"]["streamKey"]))
    return urls


async def _run(sample: Path, timing: MsTiming, recording: bool) -> Result:
    """A fresh server per run: the other run's lingering HLS windows must not count."""
    server = Relaycast(extra_env=SERVER_ENV).start()
    try:
        log(f"RECORD: {STREAMS} publishers, recording {'on' if recording else 'off'}")
        urls = _streams(server, recording)
        written = (lambda: _written(server)) if recording else None
        return await run_publishers(server.pid, urls, sample, timing, timing.window, written)
    finally:
        server.stop()


def median_run(runs: list[Result]) -> Result:
    """The run with the median CPU (the lower middle one of an even count)."""
    ordered = sorted(runs, key=lambda r: float(r["cpu_ms_per_s"]))
    return ordered[(len(ordered) - 1) // 2]


def _written(server: Relaycast) -> dict[str, float]:
    with urllib.request.urlopen(server.http_base + "/metrics", timeout=30) as response:
        return written_share(response.read().decode())


def written_share(metrics: str) -> dict[str, float]:
    """Bytes the recorder wrote and bytes ingest received (every stream), from the
    Prometheus text of ``/metrics``."""
    totals = {"relaycast_recording_bytes_written_total": 0.0, "relaycast_ingest_bytes_total": 0.0}
    for row in metrics.splitlines():
        name = row.split("{", 1)[0].split(" ", 1)[0]
        if name in totals:
            totals[name] += float(row.rsplit(" ", 1)[1])
    written, received = totals.values()
    share = round(written / received, 3) if received else 0.0
    return {"recorded_bytes": written, "ingest_bytes": received, "written_per_ingest": share}


async def scenario_record(sample: Path, config: ScenarioConfig) -> list[Result]:
    timing = MsTiming.make(config.quick)
    offs: list[Result] = []
    ons: list[Result] = []
    for _ in range(config.repeats):  # alternated: a burst of other load hits one pair
        offs.append(await _run(sample, timing, False))
        ons.append(await _run(sample, timing, True))
    off, on = median_run(offs), median_run(ons)
    off["cpu_ms_per_s_runs"] = [round(r["cpu_ms_per_s"], 1) for r in offs]
    on["cpu_ms_per_s_runs"] = [round(r["cpu_ms_per_s"], 1) for r in ons]
    ratio = on["cpu_ms_per_s"] / off["cpu_ms_per_s"] if off["cpu_ms_per_s"] else None
    met = ratio is not None and ratio <= TARGET_RATIO
    on["cpu_ms_per_stream_s"] = on["cpu_ms_per_s"] / STREAMS
    off["cpu_ms_per_stream_s"] = off["cpu_ms_per_s"] / STREAMS
    params = {
        "publishers": STREAMS,
        "quick": config.quick,
        "repeats": config.repeats,
        "reference": "recording off",
    }
    target = f"<= {TARGET_RATIO} x recording off"
    result = line("RECORD", params, on, off, ratio, target, met, config)
    result["row"] = [
        f"RECORD: {STREAMS} x 4 Mbit/s recorded, server CPU ms/s per stream (off)",
        f"{on['cpu_ms_per_stream_s']:.1f}",
        f"{off['cpu_ms_per_stream_s']:.1f}",
        f"{ratio:.2f}" if ratio is not None else "-",
        target,
        "yes" if met else "**no**",
        f"RSS {on['rss_mib']:.0f} MiB (off {off['rss_mib']:.0f}); written/ingest "
        f"{on['while_live']['written_per_ingest']:.2f}",
    ]
    return [result]
