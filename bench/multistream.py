"""Multistream benchmarks (issue 6), with nginx-rtmp measured in the same run.

* MS-A - one paced 4 Mbit/s publisher pushed to 10 destinations. Server CPU of
  ``relaycast serve`` against nginx-rtmp with 10 ``push`` lines; the push share of
  each (the same publisher with no destinations subtracted) is reported too, because
  ``relaycast serve`` also packages HLS and nginx-rtmp's reference does not, with its
  ratio to nginx-rtmp's. Relaycast runs as built (``mediaPath`` says whether compiled)
  and again on the pure-Python path (``RELAYCAST_NO_EXTENSIONS=1``), printed beside
  it. With ``--repeats N`` each figure is the median of N runs, interleaved.
  Target: total CPU <= 2 x nginx-rtmp.
* MS-B - 10 publishers x 10 destinations (100 pushes) for 60 s (quick: 10 s): every
  destination must get >= 99 % of the frames. "Got" is measured on both ends: the
  frames the destination's queue dropped (relaycast's status), and the bytes the
  receiving nginx-rtmp counted for that stream (its rtmp_stat page) against what
  relaycast says it sent. CPU and memory of the server are recorded.

Destinations are one sink nginx-rtmp (ten applications, one per destination index),
the same for relaycast and the reference; the sink's own CPU is not counted.
"""

from __future__ import annotations

import asyncio
import copy
import re
import statistics
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import procstat
from bench.scenarios import Result, ScenarioConfig, Workers, line, log
from bench.servers import NGINX_HEAD, NGINX_RTMP_MODULE, Relaycast, free_port, run_nginx
from server.accel import ENV_NO_EXTENSIONS

DESTINATIONS = 10
TARGET_RATIO = 1.5  # issue 20: MS-A, 10 destinations vs nginx-rtmp push
MIN_RECEIVED = 0.99
SERVER_ENV = {"RELAYCAST_SRT__PORT": "0"}  # SRT ingest unused here; never clash on 9000
PURE_ENV = {**SERVER_ENV, ENV_NO_EXTENSIONS: "1"}


@dataclass
class MsTiming:
    warmup: float
    window: float
    b_window: float

    @classmethod
    def make(cls, quick: bool) -> MsTiming:
        return cls(3.0, 8.0, 10.0) if quick else cls(5.0, 30.0, 60.0)


# --------------------------------------------------------------------------- nginx


_SINK = (
    NGINX_HEAD
    + """rtmp {{
    server {{
        listen 127.0.0.1:{port};
{apps}
    }}
}}
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{http};
        location /stat {{ rtmp_stat all; }}
    }}
}}
"""
)

_PUSHER = (
    NGINX_HEAD
    + """rtmp {{
    server {{
        listen 127.0.0.1:{port};
        application live {{
            live on;
{pushes}
        }}
    }}
}}
"""
)


class Nginx:
    """One nginx-rtmp process from a config template, on free loopback ports."""

    def __init__(self, template: str, **fields: Any) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-ms-nginx-")
        self.dir = Path(self._tmp.name)
        self.port, self.http = free_port(), free_port()
        conf = self.dir / "nginx.conf"
        conf.write_text(
            template.format(
                module=NGINX_RTMP_MODULE, dir=self.dir, port=self.port, http=self.http, **fields
            )
        )
        try:
            self.proc = run_nginx(conf, self.port)
        except RuntimeError:
            self._tmp.cleanup()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stat(self) -> dict[str, int]:
        """Bytes received per stream name (rtmp_stat), for the sink."""
        url = f"http://127.0.0.1:{self.http}/stat"
        with urllib.request.urlopen(url, timeout=10) as response:
            xml = response.read().decode()
        out: dict[str, int] = {}
        for block in re.findall(r"<stream>(.*?)</stream>", xml, re.S):
            name = re.search(r"<name>(.*?)</name>", block)
            got = re.search(r"<bytes_in>(\d+)</bytes_in>", block)
            if name and got:
                out[name.group(1)] = out.get(name.group(1), 0) + int(got.group(1))
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._tmp.cleanup()


def sink() -> Nginx:
    apps = "\n".join(f"        application d{i} {{ live on; }}" for i in range(DESTINATIONS))
    return Nginx(_SINK, apps=apps)


def pusher(sink_port: int) -> Nginx:
    pushes = "\n".join(
        f"            push rtmp://127.0.0.1:{sink_port}/d{i};" for i in range(DESTINATIONS)
    )
    return Nginx(_PUSHER, pushes=pushes)


# --------------------------------------------------------------------------- relaycast


def add_destinations(server: Relaycast, stream_id: str, sink_port: int, tag: str) -> list[str]:
    ids = []
    for i in range(DESTINATIONS):
        body = {"url": f"rtmp://127.0.0.1:{sink_port}/d{i}", "streamKey": f"{tag}-{i}"}
        made = server.api("POST", f"/v1/live-streams/{stream_id}/destinations", body)
        ids.append(made["destinationId"])
    return ids


def statuses(server: Relaycast, stream_id: str) -> list[Result]:
    doc = server.api("GET", f"/v1/live-streams/{stream_id}/destinations")
    return [d["status"] for d in doc["destinations"]]


def create_streams(server: Relaycast, count: int, window: int = 0) -> list[Result]:
    body = {"reconnectWindowSeconds": window}
    return [
        server.api("POST", "/v1/live-streams", {"name": f"ms-{i}", **body}) for i in range(count)
    ]


async def measure(pids: list[int], load: Workers, timing: MsTiming, window: float) -> Result:
    """CPU of ``pids[0]`` between two marks after the warm-up; memory at the end."""
    await load.go()
    await asyncio.sleep(timing.warmup)
    m0 = await load.mark()
    c0, s0 = procstat.cpu_times(pids[0]).total, procstat.system_ticks()
    await asyncio.sleep(window)
    m1 = await load.mark()
    c1, s1 = procstat.cpu_times(pids[0]).total, procstat.system_ticks()
    memory = procstat.memory_kib(pids[0])
    seconds = m1["t"] - m0["t"]
    return {
        "cpu_ms_per_s": (c1 - c0) * 1000 / seconds,
        "mbit_in": (m1["bytes"] - m0["bytes"]) * 8 / seconds / 1e6,
        "rss_mib": memory.get("VmRSS", 0) / 1024,
        "window_s": seconds,
        "writes_so_far": m1["writes"],
        **procstat.busy_and_steal_percent(s0, s1),
    }


async def run_publishers(
    server_pid: int,
    urls: list[str],
    sample: Path,
    timing: MsTiming,
    window: float,
    while_live: Callable[[], Any] | None = None,
) -> Result:
    load = Workers(urls, sample, "paced", 1)
    try:
        await load.start()
        result = await measure([server_pid], load, timing, window)
        if while_live is not None:
            result["while_live"] = while_live()
        done = await load.stop()
    except BaseException:
        await load.kill()
        raise
    # paced publishers write one RTMP message per group: frames (+ a few headers)
    result["messages_per_publisher"] = done["writes"] / len(urls)
    result["publisher_errors"] = done["errors"]
    return result


async def relaycast_a(
    sample: Path, timing: MsTiming, sink_port: int, env: dict[str, str] = SERVER_ENV
) -> tuple[Result, Result]:
    """(with 10 destinations, with none): the same server, two fresh streams."""
    server = Relaycast(extra_env=env).start()
    try:
        media_path = server.api("GET", "/healthz").get("mediaPath", "?")
        bare, pushed = create_streams(server, 2)
        add_destinations(server, pushed["streamId"], sink_port, "rc")
        base = await run_publishers(server.pid, [_url(server, bare)], sample, timing, timing.window)
        await asyncio.sleep(1.0)
        result = await run_publishers(
            server.pid,
            [_url(server, pushed)],
            sample,
            timing,
            timing.window,
            lambda: statuses(server, pushed["streamId"]),
        )
        result["destinations"] = result.pop("while_live")
        result["media_path"] = base["media_path"] = media_path
        return result, base
    finally:
        server.stop()


def _url(server: Relaycast, stream: Result) -> str:
    return server.rtmp_url(stream["ingest"]["streamKey"])


async def nginx_a(sample: Path, timing: MsTiming, sink_port: int) -> tuple[Result, Result]:
    """nginx-rtmp pushing to 10, and nginx-rtmp without push (live on only)."""
    results = []
    for pushes in (True, False):
        server = pusher(sink_port) if pushes else Nginx(_PUSHER, pushes="")
        try:
            url = f"rtmp://127.0.0.1:{server.port}/live/ref-{int(pushes)}"
            results.append(await run_publishers(server.pid, [url], sample, timing, timing.window))
        finally:
            server.stop()
    return results[0], results[1]


def _push_share(pair: tuple[Result, Result]) -> float:
    """ms/s per destination: with the destinations, less the same stream without."""
    pushed, bare = pair
    return float(pushed["cpu_ms_per_s"] - bare["cpu_ms_per_s"]) / DESTINATIONS


def _median_pair(pairs: list[tuple[Result, Result]]) -> tuple[Result, Result]:
    """The run whose push share is the median (its figures stay consistent)."""
    ranked = sorted(pairs, key=_push_share)
    return ranked[(len(ranked) - 1) // 2]


def _ratio(ours: float, ref: float) -> float | None:
    return ours / ref if ref > 0 else None


async def scenario_ms_a(sample: Path, config: ScenarioConfig) -> list[Result]:
    timing = MsTiming.make(config.quick)
    runs: dict[str, list[tuple[Result, Result]]] = {"built": [], "pure": [], "ref": []}
    destination_sink = sink()
    try:
        for rep in range(config.repeats):
            run = f"run {rep + 1}/{config.repeats}"
            log(f"MS-A: relaycast, 1 publisher -> 10 destinations (and -> none), {run}")
            runs["built"].append(await relaycast_a(sample, timing, destination_sink.port))
            log(f"MS-A: the same, pure Python ({ENV_NO_EXTENSIONS}=1), {run}")
            runs["pure"].append(await relaycast_a(sample, timing, destination_sink.port, PURE_ENV))
            log(f"MS-A: nginx-rtmp push to 10 (and no push), {run}")
            runs["ref"].append(await nginx_a(sample, timing, destination_sink.port))
    finally:
        destination_sink.stop()
    samples = copy.deepcopy(runs)  # before the medians below gain their summary fields
    total_ratios = [
        _ratio(ours["cpu_ms_per_s"], ref["cpu_ms_per_s"])
        for (ours, _), (ref, _) in zip(runs["built"], runs["ref"], strict=True)
    ]
    push_ratios = {
        kind: [
            _ratio(_push_share(ours), _push_share(ref))
            for ours, ref in zip(runs[kind], runs["ref"], strict=True)
        ]
        for kind in ("built", "pure")
    }
    ratio = _median_of(total_ratios)
    push_ratio, push_ratio_pure = _median_of(push_ratios["built"]), _median_of(push_ratios["pure"])
    (ours, ours_base), (pure, pure_base) = _median_pair(runs["built"]), _median_pair(runs["pure"])
    ref, ref_base = _median_pair(runs["ref"])
    push_ours, push_pure, push_ref = (
        _push_share((ours, ours_base)),
        _push_share((pure, pure_base)),
        _push_share((ref, ref_base)),
    )
    active = sum(1 for s in ours["destinations"] if s["state"] == "active")
    met = ratio is not None and ratio <= TARGET_RATIO and active == DESTINATIONS
    params = {"publishers": 1, "destinations": DESTINATIONS, "quick": config.quick}
    ours["push_ms_per_destination_s"] = push_ours
    ours["baseline_cpu_ms_per_s"] = ours_base["cpu_ms_per_s"]
    ours["push_ratio"] = push_ratio
    ours["pure"] = {
        "cpu_ms_per_s": pure["cpu_ms_per_s"],
        "baseline_cpu_ms_per_s": pure_base["cpu_ms_per_s"],
        "push_ms_per_destination_s": push_pure,
        "push_ratio": push_ratio_pure,
        "media_path": pure["media_path"],
    }
    ours["samples"] = {kind: [list(pair) for pair in samples[kind]] for kind in ("built", "pure")}
    ref["push_ms_per_destination_s"] = push_ref
    ref["baseline_cpu_ms_per_s"] = ref_base["cpu_ms_per_s"]
    ref["samples"] = [list(pair) for pair in samples["ref"]]
    result = line("MS-A", params, ours, ref, ratio, f"<= {TARGET_RATIO} x nginx-rtmp", met, config)
    result["ratios"] = {"total": total_ratios, "push": push_ratios}
    result["row"] = [
        "MS-A: 1 x 4 Mbit/s -> 10 destinations, server CPU ms/s (push ms/s per destination)",
        f"{ours['cpu_ms_per_s']:.1f} ({push_ours:.2f}) {ours['media_path']}; "
        f"pure {pure['cpu_ms_per_s']:.1f} ({push_pure:.2f})",
        f"{ref['cpu_ms_per_s']:.1f} ({push_ref:.2f})",
        f"{ratio:.2f}" if ratio is not None else "-",
        result["target"],
        "yes" if met else "**no**",
        f"{active}/{DESTINATIONS} active; push share {_fmt(push_ratio)} x nginx-rtmp's "
        f"(pure {_fmt(push_ratio_pure)} x)",
    ]
    return [result]


def _median_of(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _fmt(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


async def scenario_ms_b(sample: Path, config: ScenarioConfig) -> list[Result]:
    timing = MsTiming.make(config.quick)
    publishers = 10
    destination_sink = sink()
    server = Relaycast(extra_env=SERVER_ENV).start()
    load: Workers | None = None
    try:
        # a reconnect window keeps the pushes up after the publishers stop, so the
        # sink can take in what is still in flight before we count
        streams = create_streams(server, publishers, window=120)
        for n, stream in enumerate(streams):
            add_destinations(server, stream["streamId"], destination_sink.port, f"s{n}")
        log(f"MS-B: {publishers} publishers x {DESTINATIONS} destinations, {timing.b_window:g} s")
        load = Workers([_url(server, s) for s in streams], sample, "paced", 1)
        await load.start()
        ours = await measure([server.pid], load, timing, timing.b_window)
        done = await load.stop()
        load = None
        received = await _settled(destination_sink)
        status_by_stream = [statuses(server, s["streamId"]) for s in streams]
        frames = max(1.0, ours["writes_so_far"] / publishers)  # one message per frame
        worst, problems = _received(status_by_stream, received, frames)
        ours["worst_received_share"] = worst
        ours["problems"] = problems[:10]
        ours["publisher_errors"] = done["errors"]
    finally:
        if load is not None:
            await load.kill()
        server.stop()
        destination_sink.stop()
    met = worst >= MIN_RECEIVED and not problems
    params = {"publishers": publishers, "destinations": DESTINATIONS, "quick": config.quick}
    result = line("MS-B", params, ours, None, None, ">= 99 % received each", met, config)
    result["row"] = [
        f"MS-B: {publishers} x {DESTINATIONS} pushes for {timing.b_window:g} s, worst received",
        f"{worst * 100:.2f} %",
        "-",
        "-",
        result["target"],
        "yes" if met else "**no**",
        f"CPU {ours['cpu_ms_per_s']:.0f} ms/s, RSS {ours['rss_mib']:.0f} MiB",
    ]
    return [result]


async def _settled(receiver: Nginx, limit: float = 30.0) -> dict[str, int]:
    """The sink's per-stream byte counts once they stop growing (bytes still in
    socket buffers arrive first); the streams are still published meanwhile."""
    last: dict[str, int] = {}
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        now = receiver.stat()
        if now == last:
            break
        last = now
    return last


def _received(
    status_by_stream: list[list[Result]], received: dict[str, int], frames: float
) -> tuple[float, list[str]]:
    """Worst share received over all destinations: bytes the sink counted against
    bytes relaycast sent (in flight at the moment of reading aside), and frames not
    dropped by the destination's queue against frames published."""
    worst, problems = 1.0, []
    for n, destinations in enumerate(status_by_stream):
        for i, status in enumerate(destinations):
            name = f"s{n}-{i}"
            sent, got = status["bytesSent"], received.get(name, 0)
            share = min(got / sent if sent else 0.0, 1.0)
            frames_ok = 1.0 - status["droppedFrames"] / frames
            worst = min(worst, share, frames_ok)
            if status["reconnects"] or min(share, frames_ok) < MIN_RECEIVED:
                problems.append(f"{name}: {status}")
    return worst, problems
