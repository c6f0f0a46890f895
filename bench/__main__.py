"""RTMP ingest benchmarks: relaycast against nginx-rtmp, measured in the same run.

    python -m bench --scenario A|B|C|all [--quick] [--out DIR] [--repeats N]
                    [--target ingest|serve|ingest,serve] [--publishers 1,10,50,200]

Prints one JSON line per scenario (scenario A: one per publisher count) on stdout and
progress on stderr. ``--quick`` (< 3 minutes) uses shorter windows, fewer publishers and
one repetition; the full run repeats every measurement 3x and reports min/median/max.
With ``--out DIR`` the lines are also written to ``DIR/rtmp-ingest-YYYY-MM-DD.json``
with a Markdown table next to it. Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import date
from pathlib import Path

from bench.media import SampleSpec, ensure_sample
from bench.report import write_report
from bench.scenario_c import scenario_c
from bench.scenarios import Result, ScenarioConfig, Server, log, scenario_a, scenario_b
from bench.servers import NginxRtmp, Relaycast, RelaycastIngest

DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache"


async def run(args: argparse.Namespace) -> list[Result]:
    config = ScenarioConfig.make(args.quick, args.repeats)
    if args.publishers:
        config.publishers = [int(n) for n in args.publishers.split(",")]
    if args.duration:
        config.a_timing.duration = args.duration
    config.grouping = args.writes
    wanted = "ABC" if args.scenario == "all" else args.scenario.upper()
    started = time.monotonic()
    log("preparing the 4 Mbit/s sample (cached after the first run)")
    sample = ensure_sample(args.cache, SampleSpec())
    results: list[Result] = []

    def emit(lines: list[Result]) -> None:
        for item in lines:
            print(json.dumps(item), flush=True)
        results.extend(lines)

    for target in args.target.split(","):
        if "A" not in wanted and "B" not in wanted:
            break
        wrapper = args.wrap.split() if args.wrap else None
        ours: Server = (
            Relaycast(wrapper=wrapper) if target == "serve" else RelaycastIngest(wrapper=wrapper)
        )
        reference = NginxRtmp(hls=target == "serve")
        try:
            ours.start()
            reference.start()
            if "A" in wanted:
                emit(await scenario_a(ours, reference, sample, config, target))
            if "B" in wanted and (target == "ingest" or args.target == "serve"):
                emit(await scenario_b(ours, reference, sample, config, target))
        finally:
            ours.stop()
            reference.stop()
    if "C" in wanted:
        emit(await scenario_c(sample, config))
    log(f"done in {time.monotonic() - started:.0f} s")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="all", choices=["A", "B", "C", "a", "b", "c", "all"])
    parser.add_argument("--quick", action="store_true", help="short run (< 3 minutes)")
    parser.add_argument(
        "--target",
        default="ingest",
        help="what A/B measure, comma-separated: 'ingest' = relaycast's RTMP ingest plane "
        "(python -m bench.plane) vs nginx-rtmp 'live on'; 'serve' = the whole `relaycast "
        "serve` (ingest + HLS packaging) vs nginx-rtmp with 'hls on'",
    )
    parser.add_argument("--out", type=Path, help="write NAME-DATE.json/.md here")
    parser.add_argument("--name", default="rtmp-ingest", help="file name stem for --out")
    parser.add_argument("--repeats", type=int, help="override repetitions (default 3, quick 1)")
    parser.add_argument("--publishers", help="scenario A publisher counts, e.g. 1,10,50,200")
    parser.add_argument("--duration", type=float, help="scenario A window in seconds")
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
    args = parser.parse_args(argv)
    try:
        import uvloop
    except ImportError:
        results = asyncio.run(run(args))
    else:
        results = uvloop.run(run(args))
    if args.out:
        stem = args.out / f"{args.name}-{date.today().isoformat()}"
        write_report(results, stem, " ".join(sys.argv))
        log(f"wrote {stem}.json and {stem}.md")
    return 0 if all(r["met"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
