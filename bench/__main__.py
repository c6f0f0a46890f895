"""relaycast benchmarks: every figure measured next to its reference in the same run.

    python -m bench [--quick] [--scenario NAME[,NAME...]|all] [--out DIR] [--repeats N]
    python -m bench --list

Scenarios (``--list`` prints them with their references and targets): rtmp-a, rtmp-b,
bus, srt-a, srt-b, srt-push, hls-a, hls-b, hls-c, ms-a, ms-b, record, play, whip, hostile, upload,
vod, abr, channel, nodes.
``--quick`` (< 3 minutes for all of them) uses short windows, few publishers and one
repetition; the full run repeats measurements and reports min/median/max. Prints one
JSON line per result on stdout and progress on stderr. With ``--out DIR`` the run is also written as
``DIR/bench-DATE.json`` (machine, versions, every sample), ``DIR/bench-DATE.md`` (the
summary table) and ``DIR/plots/*.png``. Everything runs on 127.0.0.1 and nothing is
installed: missing reference programs are named before anything starts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from bench.abr import scenario_abr
from bench.channel import channel_scenario
from bench.hls_scenarios import run_hls
from bench.hostile import hostile_scenario
from bench.media import SampleSpec, ensure_sample
from bench.multistream import scenario_ms_a, scenario_ms_b
from bench.nodes import nodes_scenario
from bench.play import scenario_play
from bench.preflight import missing
from bench.record import scenario_record
from bench.scenario_c import scenario_c
from bench.scenarios import Result, ScenarioConfig, Server, log, scenario_a, scenario_b
from bench.servers import NginxRtmp, Relaycast, RelaycastIngest
from bench.srt_push import scenario_srt_push
from bench.srt_scenarios import srt_scenarios
from bench.summary import write_run
from bench.upload import upload_scenario
from bench.vod import vod_scenario
from bench.whip import scenario_whip
from server.accel import ENV_NO_EXTENSIONS

DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache"


@dataclass(frozen=True)
class Scenario:
    name: str
    group: str  # what it needs installed (bench.preflight)
    what: str
    run: Callable[[argparse.Namespace, ScenarioConfig, Path], Awaitable[list[Result]]]


async def _rtmp(
    args: argparse.Namespace, config: ScenarioConfig, sample: Path, kind: str
) -> list[Result]:
    """RTMP A or B against nginx-rtmp, then the Python floor against nginx-rtmp."""
    fn = scenario_a if kind == "A" else scenario_b
    out: list[Result] = []
    for target in args.target.split(","):
        wrapper = args.wrap.split() if args.wrap else None
        base = target.removesuffix("-pure")
        ours = _relaycast(base, wrapper, pure=base != target)
        # 'ingest' and 'serve' measure their pure-Python twin in the same run, interleaved,
        # so that every line prints the pure figure beside the compiled one (issue 20).
        twin = _relaycast(base, wrapper, pure=True) if target in ("ingest", "serve") else None
        reference = NginxRtmp(hls=base == "serve")
        try:
            for server in (ours, twin, reference):
                if server is not None:
                    server.start()
            out += await fn(ours, reference, sample, config, target, pure=twin)
        finally:
            for server in (ours, twin, reference):
                if server is not None:
                    server.stop()
    return out


def _relaycast(base: str, wrapper: list[str] | None, pure: bool) -> Server:
    """The relaycast side of an RTMP scenario; ``pure``: with the compiled hot path
    switched off (RELAYCAST_NO_EXTENSIONS=1), named ``...-pure``."""
    env = {ENV_NO_EXTENSIONS: "1"} if pure else None
    server: Server = (
        Relaycast(extra_env=env, wrapper=wrapper)
        if base == "serve"
        else RelaycastIngest(wrapper=wrapper, floor=base == "floor", extra_env=env)
    )
    if pure:
        server.name += "-pure"
    return server


SCENARIOS = [
    Scenario(
        "rtmp-a",
        "rtmp",
        "RTMP ingest scaling, 1-200 paced 4 Mbit/s publishers: CPU per stream vs nginx-rtmp",
        lambda a, c, s: _rtmp(a, c, s, "A"),
    ),
    Scenario(
        "rtmp-b",
        "rtmp",
        "one RTMP publisher flat out: MB ingested per CPU-second vs nginx-rtmp",
        lambda a, c, s: _rtmp(a, c, s, "B"),
    ),
    Scenario(
        "bus",
        "rtmp",
        "bus fan-out: CPU per reader, one stalled reader must not slow the publisher",
        lambda a, c, s: scenario_c(s, c),
    ),
    Scenario(
        "srt-a",
        "srt",
        "SRT ingest scaling (1, 10, 50, 100): CPU per stream vs srt-live-transmit listeners",
        lambda a, c, s: srt_scenarios(s, c, "A", _counts(a)),
    ),
    Scenario(
        "srt-b",
        "srt",
        "SRT ingest with 2 % loss (1, 10, 50) and 5 % (10): recovered packets and CPU "
        "vs srt-live-transmit",
        lambda a, c, s: srt_scenarios(s, c, "B", _counts(a)),
    ),
    Scenario(
        "srt-push",
        "srt",
        "SRT push, 1 SRT publish -> 10 srt-live-transmit listeners: CPU per destination vs "
        "srt-live-transmit relaying the same to one",
        lambda a, c, s: scenario_srt_push(s, c),
    ),
    Scenario(
        "hls-a",
        "hls",
        "HLS packaging: whole server CPU per stream vs nginx-rtmp with hls on",
        lambda a, c, s: run_hls(["HLS-A"], a.cache, c),
    ),
    Scenario(
        "hls-b",
        "hls",
        "LL-HLS latency: publish to part listed; hls.js live-edge distance in Chromium",
        lambda a, c, s: run_hls(["HLS-B"], a.cache, c),
    ),
    Scenario(
        "hls-c",
        "hls",
        "LL-HLS viewer load: blocking reloads and part fetches, p95 for an existing part",
        lambda a, c, s: run_hls(["HLS-C"], a.cache, c),
    ),
    Scenario(
        "ms-a",
        "multistream",
        "multistream 1 x 10 destinations: server CPU vs nginx-rtmp push",
        lambda a, c, s: scenario_ms_a(s, c),
    ),
    Scenario(
        "ms-b",
        "multistream",
        "multistream 10 x 10: every destination receives >= 99 % of the frames",
        lambda a, c, s: scenario_ms_b(s, c),
    ),
    Scenario(
        "record",
        "record",
        "recording: whole-server CPU with 10 recorded streams vs 10 unrecorded",
        lambda a, c, s: scenario_record(s, c),
    ),
    Scenario(
        "abr",
        "abr",
        "renditions: CPU per rendition-s of the standard ladder vs the ffmpeg CLI, added latency",
        lambda a, c, s: scenario_abr(s, c),
    ),
    Scenario(
        "play",
        "play",
        "RTMP/SRT playback: CPU per RTMP player (10, 50) vs nginx-rtmp, per SRT reader "
        "(1, 10) vs srt-live-transmit relaying to one caller",
        lambda a, c, s: scenario_play(s, c),
    ),
    Scenario(
        "whip",
        "whip",
        "WebRTC: server CPU of a WHIP publisher vs an RTMP one; per WHEP viewer",
        lambda a, c, s: scenario_whip(a.cache, c),
    ),
    Scenario(
        "hostile",
        "hostile",
        "floods, trickles, slowloris, SRT garbage while a publisher streams: bitrate, RSS, log",
        lambda a, c, s: hostile_scenario(s, c),
    ),
    Scenario(
        "upload",
        "upload",
        "tus upload throughput and server memory vs dd on the same disk",
        lambda a, c, s: upload_scenario(a.quick),
    ),
    Scenario(
        "vod",
        "vod",
        "VOD: 200 concurrent GETs of one cached segment of an uploaded file, p95 latency",
        lambda a, c, s: vod_scenario(s, a.quick),
    ),
    Scenario(
        "nodes",
        "nodes",
        "several nodes on PostgreSQL: streams carried with serve --workers 2 vs 1; "
        "LL-HLS part p95 through another node vs the owner",
        lambda a, c, s: nodes_scenario(s, c),
    ),
    Scenario(
        "channel",
        "channel",
        "24/7 channel playout: CPU of one conformed channel vs ffmpeg -re concat; A/V drift",
        lambda a, c, s: channel_scenario(a.quick, a.repeats),
    ),
]
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


def _counts(args: argparse.Namespace) -> list[int] | None:
    """Publisher counts given on the command line (None: each scenario's own)."""
    return [int(n) for n in args.publishers.split(",")] if args.publishers else None


def _selected(spec: str) -> list[Scenario]:
    if spec == "all":
        return SCENARIOS
    names = [name.strip().lower() for name in spec.split(",") if name.strip()]
    unknown = [name for name in names if name not in BY_NAME]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {', '.join(unknown)}; see --list")
    return [BY_NAME[name] for name in names]


async def run(args: argparse.Namespace, chosen: list[Scenario]) -> list[Result]:
    config = ScenarioConfig.make(args.quick, args.repeats)
    if args.publishers:
        config.publishers = [int(n) for n in args.publishers.split(",")]
    if args.duration:
        config.a_timing.duration = args.duration
    config.grouping = args.writes
    started = time.monotonic()
    log("preparing the 4 Mbit/s sample (cached after the first run)")
    sample = ensure_sample(args.cache, SampleSpec())
    results: list[Result] = []
    for scenario in chosen:
        log(f"== {scenario.name}: {scenario.what}")
        begun = time.monotonic()
        lines = await scenario.run(args, config, sample)
        for item in lines:
            item.setdefault("name", scenario.name)
            print(json.dumps(item), flush=True)
        results += lines
        log(f"== {scenario.name} took {time.monotonic() - begun:.0f} s")
    log(f"done in {time.monotonic() - started:.0f} s")
    return results


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="all", help="names, comma-separated, or all")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--quick", action="store_true", help="short run (< 3 minutes)")
    parser.add_argument("--out", type=Path, help="write bench-DATE.json/.md and plots/ here")
    parser.add_argument("--name", default="bench", help="file name stem for --out")
    parser.add_argument("--repeats", type=int, help="override repetitions (default 3, quick 1)")
    parser.add_argument("--publishers", help="RTMP/SRT publisher counts, e.g. 1,10,50,200")
    parser.add_argument("--duration", type=float, help="rtmp-a window in seconds")
    parser.add_argument(
        "--target",
        default="ingest,floor",
        help="what rtmp-a/rtmp-b run, comma-separated: 'ingest' = relaycast's RTMP ingest "
        "plane (python -m bench.plane) vs nginx-rtmp; 'floor' = a bare uvloop reader that "
        "only counts the published bytes (what Python itself allows) vs nginx-rtmp; "
        "'serve' = the whole `relaycast serve` vs nginx-rtmp with 'hls on'; "
        "'ingest' and 'serve' also run their pure-Python twin (RELAYCAST_NO_EXTENSIONS=1) "
        "in the same run and print it beside the compiled figure; 'ingest-pure'/"
        "'serve-pure' = the pure-Python path alone",
    )
    parser.add_argument(
        "--writes",
        choices=["message", "frame"],
        default="message",
        help="paced publishers write each message (like ffmpeg/OBS) or each video frame",
    )
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="sample cache dir")
    parser.add_argument(
        "--wrap", help="prefix for the relaycast process, e.g. 'py-spy record -o x.svg --'"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.list:
        for scenario in SCENARIOS:
            print(f"{scenario.name:8} {scenario.what}")
        return 0
    chosen = _selected(args.scenario)
    problems = missing({scenario.group for scenario in chosen})
    if problems:
        for problem in problems:
            print(f"python -m bench: {problem}", file=sys.stderr)
        return 2
    try:
        import uvloop
    except ImportError:
        results = asyncio.run(run(args, chosen))
    else:
        results = uvloop.run(run(args, chosen))
    if args.out:
        stem = args.out / f"{args.name}-{date.today().isoformat()}"
        written = write_run(results, stem, " ".join(["python -m bench", *sys.argv[1:]]))
        log("wrote " + ", ".join(str(path) for path in written))
    return 0 if all(r["met"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
