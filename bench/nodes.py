"""Several nodes on one PostgreSQL (issue 22): what a second worker buys, and what
proxied playback costs.

* capacity: N paced 4 Mbit/s RTMP publishers (each packaged as LL-HLS) against
  ``serve --workers 1`` and then ``--workers 2`` on the same machine and database. A
  worker is one single-threaded process, so it saturates at ``SATURATED_CORE_PERCENT``
  of a core: each worker's idle share, its loaded share and its streams (where the
  database says each encoder landed) give its cost per stream, and the installation
  is full when its first worker is (``carried``: how even the spread is counts; the
  workers even out the kernel's SO_REUSEPORT hash, ``server.ingest.spread``). An
  extrapolation from N streams, not a ramp to saturation. Ratio = capacity with 2
  workers / with 1 (target >= 1.8). The load generators run on the same machine and
  take their share of its cores.
* proxy: one stream published to node A; an LL-HLS client follows it with blocking
  reloads on A and fetches every new part from A and from node B (B proxies it from
  A), alternating which goes first. Target: B's part p95 within 20 ms of A's.

Needs PostgreSQL: ``BENCH_PG_URL`` or ``PG_TEST_URL``
(``postgresql+asyncpg://…``, a role that may create databases; each run gets a fresh
database, dropped afterwards).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from bench import procstat
from bench.scenarios import (
    SATURATED_CORE_PERCENT,
    Result,
    ScenarioConfig,
    Workers,
    line,
    log,
    offered_mbit,
)
from bench.servers import Relaycast, free_port

CAPACITY_TARGET = 1.8
PROXY_TARGET_MS = 20.0
FETCHES_PER_PART = 3
"""Each new part is fetched this many times from each node: more samples per second
of stream (a part comes every 0.5 s), so a short run's p95 is not its maximum."""
_HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part(\d+)\.(\d+)\.m4s')


def pg_url() -> str | None:
    return os.environ.get("BENCH_PG_URL") or os.environ.get("PG_TEST_URL")


@contextlib.asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """A database of its own for one run (the nodes' state must not mix with others')."""
    import asyncpg

    base = pg_url()
    if not base:
        raise RuntimeError("set BENCH_PG_URL (or PG_TEST_URL) to a PostgreSQL URL")
    name = f"bench_nodes_{secrets.token_hex(4)}"
    admin = base.replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        finally:
            await conn.close()


class RelaycastNode(Relaycast):
    """``relaycast serve`` on a shared database: ``--workers N`` with fixed ports, or
    one named node on free ports."""

    def __init__(self, db_url: str, workers: int = 0, node: str = "") -> None:
        super().__init__(extra_env={"RELAYCAST_DATABASE__URL": db_url})
        self.workers = workers
        self.node = node

    def start(self, timeout: float = 60.0) -> RelaycastNode:
        """``timeout``: the parent migrates before its workers start, two processes at once."""
        args = ["--node-name", self.node] if self.node else []
        if self.workers:
            http, rtmp, srt = free_port(), free_port(), free_port()
            args = ["--workers", str(self.workers), "--http-port", str(http)]
            args += ["--rtmp-port", str(rtmp), "--srt-port", str(srt)]
        self.extra_args = args
        super().start(timeout)
        if self.workers > 1:
            deadline = time.monotonic() + timeout
            while len(self.worker_pids()) < self.workers and time.monotonic() < deadline:
                time.sleep(0.1)
        return self

    def worker_pids(self) -> list[int]:
        """The processes doing the work: the workers, or the node itself."""
        assert self.proc is not None
        if self.workers < 2:  # --workers 1 is the plain server, in this process
            return [self.proc.pid]
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(pid) for pid in path.read_text().split()]


def _node_of(pid: int) -> str:
    """A worker's node name, from its command line (``--node-name NAME``)."""
    args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return args[args.index(b"--node-name") + 1].decode() if b"--node-name" in args else ""


async def _streams_per_node(db: str) -> dict[str, int]:
    """Open sessions per node, as the database recorded where each encoder landed."""
    import asyncpg

    conn = await asyncpg.connect(db.replace("postgresql+asyncpg", "postgresql"))
    try:
        rows = await conn.fetch(
            "SELECT node, count(*) AS n FROM sessions WHERE ended_at IS NULL GROUP BY node"
        )
    finally:
        await conn.close()
    return {str(row["node"] or ""): int(row["n"]) for row in rows}


async def _shares(pids: list[int], seconds: float) -> list[float]:
    """Each process's share of one core (%) over ``seconds`` from now."""
    c0 = [procstat.cpu_times(p).total for p in pids]
    await asyncio.sleep(seconds)
    return [
        (procstat.cpu_times(p).total - c) * 100 / seconds for p, c in zip(pids, c0, strict=True)
    ]


def carried(publishers: int, idle: list[float], busy: list[float], streams: list[int]) -> float:
    """Streams the workers carry together before one saturates: worker k costs
    ``idle_k + n_k x per_stream_k`` and takes the share ``n_k / N`` of new streams
    (the kernel's spread), so the installation is full when the first worker is."""
    limits = []
    for idle_k, busy_k, n_k in zip(idle, busy, streams, strict=True):
        if n_k == 0:
            continue
        per_stream = max(busy_k - idle_k, 1e-6) / n_k
        limits.append((SATURATED_CORE_PERCENT - idle_k) / per_stream * publishers / n_k)
    return min(limits) if limits else 0.0


async def _capacity_run(
    server: RelaycastNode, db: str, sample: Path, publishers: int, config: ScenarioConfig
) -> Result:
    urls = [server.rtmp_url(k) for k in server.stream_keys(publishers)]
    load = Workers(urls, sample, "paced", max(1, -(-publishers // 100)))
    timing = config.a_timing
    pids = server.worker_pids()
    idle = await _shares(pids, timing.warmup * 2)
    try:
        await load.start()
        await load.go()
        await asyncio.sleep(timing.warmup)
        m0 = await load.mark()
        busy = await _shares(pids, timing.duration)
        m1 = await load.mark()
        per_node = await _streams_per_node(db)
        done = await load.stop()
    except BaseException:
        await load.kill()
        raise
    seconds = m1["t"] - m0["t"]
    mbit = (m1["bytes"] - m0["bytes"]) * 8 / (publishers * seconds) / 1e6
    if len(pids) == 1:
        streams = [sum(per_node.values())]
    else:
        streams = [per_node.get(_node_of(p), 0) for p in pids]
    return {
        "workers": len(pids),
        "publishers": publishers,
        "worker_idle_core_percent": [round(s, 1) for s in idle],
        "worker_core_percent": [round(s, 1) for s in busy],
        "worker_streams": streams,
        "capacity_streams": carried(publishers, idle, busy, streams),
        "mbit_per_publisher": mbit,
        "saturated": max(busy) >= SATURATED_CORE_PERCENT or mbit < 0.98 * offered_mbit(sample),
        "publisher_errors": done["errors"],
        "window_s": seconds,
    }


async def capacity(sample: Path, config: ScenarioConfig) -> Result:
    publishers = 60 if config.quick else 150
    runs: dict[int, list[Result]] = {1: [], 2: []}
    for rep in range(config.repeats):
        for workers in (1, 2):
            async with fresh_database() as db:
                server = RelaycastNode(db, workers=workers)
                try:
                    server.start()
                    log(f"nodes: --workers {workers}, {publishers} publishers, run {rep + 1}")
                    result = await _capacity_run(server, db, sample, publishers, config)
                finally:
                    server.stop()
            log(
                f"nodes: --workers {workers}: cores {result['worker_core_percent']} % "
                f"(idle {result['worker_idle_core_percent']} %), streams "
                f"{result['worker_streams']}, capacity {result['capacity_streams']:.0f}"
            )
            runs[workers].append(result)
    one = statistics.median(r["capacity_streams"] for r in runs[1])
    two = statistics.median(r["capacity_streams"] for r in runs[2])
    ratio = two / one if one else None
    saturated = any(r["saturated"] for rs in runs.values() for r in rs)
    params = {
        "publishers": publishers,
        "bitrate_mbit": round(offered_mbit(sample), 3),
        "duration_s": config.a_timing.duration,
        "repeats": config.repeats,
        "metric": "RTMP+LL-HLS streams carried before the busiest worker saturates "
        "(ratio = --workers 2 / --workers 1)",
    }
    ours = {"workers_1": runs[1], "workers_2": runs[2], "saturated": saturated}
    met = ratio is not None and ratio >= CAPACITY_TARGET and not saturated
    result = line(
        "nodes-capacity", params, ours, None, ratio, f"ratio >= {CAPACITY_TARGET}", met, config
    )
    each = " / ".join(f"{r['capacity_streams']:.0f}" for r in runs[2])
    result["row"] = [
        f"nodes: RTMP+LL-HLS streams carried, {publishers} x 4 Mbit/s measured, --workers 2",
        f"{two:.0f}",
        f"--workers 1: {one:.0f}",
        "-" if ratio is None else f"{ratio:.2f}",
        f">= {CAPACITY_TARGET} x --workers 1",
        "yes" if met else "**no**",
        f"--workers 2 runs {each}" + (" (saturated)" if saturated else ""),
    ]
    return result


async def _follow(
    http: aiohttp.ClientSession, a: str, b: str, path: str, seconds: float
) -> tuple[list[float], list[float]]:
    """Block on A's playlist for each new part, then fetch it from A and through B."""
    direct: list[float] = []
    proxied: list[float] = []
    media = path.replace("master.m3u8", "media.m3u8")
    base = path.rsplit("/", 1)[0]
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    hint: tuple[int, int] | None = None
    flip = False
    while loop.time() < end:
        query = f"?_HLS_msn={hint[0]}&_HLS_part={hint[1]}" if hint else ""
        async with http.get(a + media + query) as resp:
            text = await resp.text()
        found = _HINT.search(text)
        if resp.status != 200 or found is None:
            await asyncio.sleep(0.2)
            hint = None
            continue
        if hint is not None:
            part = f"{base}/part{hint[0]}.{hint[1]}.m4s"
            order = ((b, proxied), (a, direct)) if flip else ((a, direct), (b, proxied))
            flip = not flip
            for _ in range(FETCHES_PER_PART):
                for origin, times in order:
                    started = loop.time()
                    async with http.get(origin + part) as got:
                        await got.read()
                        if got.status == 200:
                            times.append((loop.time() - started) * 1000)
        hint = (int(found[1]), int(found[2]))
    return direct, proxied


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else float("nan")


async def proxy_latency(sample: Path, config: ScenarioConfig) -> Result:
    seconds = 10.0 if config.quick else 40.0
    async with fresh_database() as db:
        a = RelaycastNode(db, node="bench-a")
        b = RelaycastNode(db, node="bench-b")
        try:
            a.start()
            b.api_key = a.api_key
            b.start()
            stream = a.api("POST", "/v1/live-streams", {"name": "proxied"})
            url = a.rtmp_url(stream["ingest"]["streamKey"])
            load = Workers([url], sample, "paced", 1)
            try:
                await load.start()
                await load.go()
                path = "/" + stream["playback"]["hlsUrl"].split("/", 3)[3]
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
                    direct, proxied = await _follow(http, a.http_base, b.http_base, path, seconds)
                await load.stop()
            except BaseException:
                await load.kill()
                raise
        finally:
            b.stop()
            a.stop()
    ours = {
        "fetches": len(direct),
        "direct_p50_ms": statistics.median(direct) if direct else float("nan"),
        "direct_p95_ms": _p95(direct),
        "proxied_p50_ms": statistics.median(proxied) if proxied else float("nan"),
        "proxied_p95_ms": _p95(proxied),
    }
    added = ours["proxied_p95_ms"] - ours["direct_p95_ms"]
    ours["added_p95_ms"] = added
    log(
        f"nodes: part p95 direct {ours['direct_p95_ms']:.1f} ms, through another node "
        f"{ours['proxied_p95_ms']:.1f} ms over {len(direct)} fetches each"
    )
    params = {
        "seconds": seconds,
        "metric": "LL-HLS part fetch p95, from the owner node and through another node",
    }
    met = len(direct) >= 30 and added <= PROXY_TARGET_MS
    target = f"proxied p95 - direct p95 <= {PROXY_TARGET_MS:.0f} ms"
    result = line("nodes-proxy", params, ours, None, None, target, met, config)
    result["row"] = [
        "nodes: LL-HLS part fetch p95 through another node (p50 / p95)",
        f"{ours['proxied_p50_ms']:.1f} / {ours['proxied_p95_ms']:.1f} ms",
        f"from the owner {ours['direct_p50_ms']:.1f} / {ours['direct_p95_ms']:.1f} ms",
        "-",
        target,
        "yes" if met else "**no**",
        f"{len(direct)} fetches each",
    ]
    return result


async def nodes_scenario(sample: Path, config: ScenarioConfig) -> list[Result]:
    if sys.platform != "linux":
        raise RuntimeError("the nodes scenario reads /proc (Linux only)")
    return [await capacity(sample, config), await proxy_latency(sample, config)]
