"""Mutation fuzzing of every peer-facing parser: only the protocol's own errors escape.

    python -m bench.fuzz [--inputs N] [--target NAME[,NAME...]] [--seed S] [--out DIR]

Targets (``bench.fuzz_targets``): rtmp (the sans-IO server connection, fed chunk
streams whole, in random reads and one byte at a time), amf0, flv, srt-packet (every
SRT parser), srt-listener (listener + accepted connection), ts (MPEG-TS demuxer).
Each input is a valid vector with seeded edits (``bench.fuzz_mutate``); an exception
outside the target's ``allowed`` types is a violation, kept with the first input that
caused it (hex) and where it was raised; so is an input that takes more than
``SLOW_CPU_SECONDS`` of CPU (a hang). The same seed replays the same inputs.

Prints one JSON line per target; with ``--out DIR`` writes ``DIR/fuzz-DATE.json`` and
``DIR/fuzz-DATE.md``. Exit status 1 when any target had a violation.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import traceback
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

from bench.fuzz_mutate import mutate
from bench.fuzz_targets import Target, targets

EXAMPLE_BYTES = 512
SLOW_CPU_SECONDS = 2.0
"""One input taking this much CPU is a violation too: a parser that loops (or goes
quadratic) on a packet stalls the whole event loop, a worse failure than a crash."""


class SlowInput(Exception):
    """Raised from the CPU timer inside a target that took too long on one input."""


def _too_slow(signum: int, frame: object) -> None:
    raise SlowInput(f"more than {SLOW_CPU_SECONDS} s of CPU on one input")


def _where(exc: BaseException) -> str:
    # the innermost frame that is not this module's (SlowInput is raised in _too_slow)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    last = frames[-1] if frames else None
    where = f"{Path(last.filename).name}:{last.lineno} in {last.name}" if last else "?"
    return f"{type(exc).__name__} at {where}"


def fuzz(target: Target, inputs: int, seed: int) -> dict[str, Any]:
    """Run ``inputs`` mutated inputs through ``target``; returns its result line."""
    import random

    rng = random.Random(f"{seed}:{target.name}")
    allowed = target.allowed
    errors: Counter[str] = Counter()
    violations: dict[str, dict[str, Any]] = {}
    total_bytes = 0
    previous = signal.signal(signal.SIGPROF, _too_slow)
    wall, cpu = time.perf_counter(), time.process_time()
    for index in range(inputs):
        data = mutate(rng, target.corpus)
        total_bytes += len(data)
        signal.setitimer(signal.ITIMER_PROF, SLOW_CPU_SECONDS)
        try:
            target.run(data, rng)
        except allowed as exc:
            errors[type(exc).__name__] += 1
        except Exception as exc:  # a violation (SlowInput too): recorded, the run goes on
            key = _where(exc)
            found = violations.setdefault(
                key, {"count": 0, "first_input": index, "message": str(exc)[:200]}
            )
            found["count"] += 1
            if found["count"] == 1:
                found["hex"] = data[:EXAMPLE_BYTES].hex()
                found["length"] = len(data)
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
    signal.signal(signal.SIGPROF, previous)
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    return {
        "target": target.name,
        "what": target.what,
        "inputs": inputs,
        "seed": seed,
        "corpus_vectors": len(target.corpus),
        "mean_input_bytes": round(total_bytes / max(inputs, 1), 1),
        "allowed": [t.__module__ + "." + t.__name__ for t in allowed] or ["(nothing)"],
        "allowed_raised": dict(errors),
        "violations": violations,
        "cpu_seconds": round(cpu, 2),
        "wall_seconds": round(wall, 2),
        "inputs_per_cpu_second": round(inputs / cpu) if cpu > 0 else None,
    }


def markdown(lines: list[dict[str, Any]], command: str, info: dict[str, Any]) -> str:
    out = [
        f"# Fuzz run {info['date']}",
        "",
        f"Command: `{command}`  ",
        f"Seed {info['seed']}; relaycast {info['versions'].get('relaycast')}, "
        f"Python {info['versions'].get('python')}, kernel {info['versions'].get('kernel')}.",
        "",
        "| target | inputs | inputs/CPU-s | CPU s | allowed errors raised | violations |",
        "|---|---:|---:|---:|---|---|",
    ]
    for line in lines:
        raised = ", ".join(f"{k} {v}" for k, v in line["allowed_raised"].items()) or "-"
        bad = ", ".join(f"{k} ({v['count']})" for k, v in line["violations"].items()) or "none"
        out.append(
            f"| {line['target']} | {line['inputs']:,} | {line['inputs_per_cpu_second'] or '-'} "
            f"| {line['cpu_seconds']} | {raised} | {bad} |"
        )
    out += ["", "Allowed per target (anything else is a violation):", ""]
    out += [f"- {line['target']}: {line['what']}; {', '.join(line['allowed'])}" for line in lines]
    return "\n".join(out) + "\n"


def write(lines: list[dict[str, Any]], folder: Path, command: str, seed: int) -> list[Path]:
    from bench.summary import versions

    info = {"date": date.today().isoformat(), "seed": seed, "versions": versions()}
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"fuzz-{info['date']}"
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    json_path.write_text(json.dumps({**info, "command": command, "results": lines}, indent=2))
    md_path.write_text(markdown(lines, command, info))
    return [json_path, md_path]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", type=int, default=1_000_000, help="inputs per target")
    parser.add_argument("--target", default="all", help="comma-separated names, or all")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write fuzz-DATE.json/.md here")
    args = parser.parse_args(argv)
    known = targets()
    names = list(known) if args.target == "all" else args.target.split(",")
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown target(s) {unknown}; known: {', '.join(known)}")
    lines = []
    for name in names:
        print(f"fuzz: {name}: {args.inputs:,} inputs", file=sys.stderr, flush=True)
        line = fuzz(known[name], args.inputs, args.seed)
        print(json.dumps(line), flush=True)
        lines.append(line)
    if args.out is not None:
        command = "python -m bench.fuzz " + " ".join(argv if argv is not None else sys.argv[1:])
        for path in write(lines, args.out, command, args.seed):
            print(f"fuzz: wrote {path}", file=sys.stderr)
    return 1 if any(line["violations"] for line in lines) else 0


if __name__ == "__main__":
    sys.exit(main())
