"""Recording cost: whole-server CPU with 10 recorded streams against 10 unrecorded ones.

Ten paced 4 Mbit/s RTMP publishers to streams without recording, then, on a fresh
``relaycast serve``, ten to streams with ``recording: true``.
The server packages HLS in both runs, so the difference is what recording costs: a
bus reader per stream, fragment building and the writes (on the recorder's threads,
counted in the process CPU). Target: recording on <= 1.15 x recording off. The
recordings are finished (probed, remuxed) after the measured window, not inside it.
"""

from __future__ import annotations

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
        return await run_publishers(server.pid, urls, sample, timing, timing.window)
    finally:
        server.stop()


async def scenario_record(sample: Path, config: ScenarioConfig) -> list[Result]:
    timing = MsTiming.make(config.quick)
    off = await _run(sample, timing, False)
    on = await _run(sample, timing, True)
    ratio = on["cpu_ms_per_s"] / off["cpu_ms_per_s"] if off["cpu_ms_per_s"] else None
    met = ratio is not None and ratio <= TARGET_RATIO
    on["cpu_ms_per_stream_s"] = on["cpu_ms_per_s"] / STREAMS
    off["cpu_ms_per_stream_s"] = off["cpu_ms_per_s"] / STREAMS
    params = {"publishers": STREAMS, "quick": config.quick, "reference": "recording off"}
    target = f"<= {TARGET_RATIO} x recording off"
    result = line("RECORD", params, on, off, ratio, target, met, config)
    result["row"] = [
        f"RECORD: {STREAMS} x 4 Mbit/s recorded, server CPU ms/s per stream (off)",
        f"{on['cpu_ms_per_stream_s']:.1f}",
        f"{off['cpu_ms_per_stream_s']:.1f}",
        f"{ratio:.2f}" if ratio is not None else "-",
        target,
        "yes" if met else "**no**",
        f"RSS {on['rss_mib']:.0f} MiB (off {off['rss_mib']:.0f})",
    ]
    return [result]
