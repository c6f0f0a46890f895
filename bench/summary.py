"""One benchmark run written out: JSON with every sample, a Markdown table, PNG plots.

Scenarios produce result lines of one shape (``bench.scenarios.line``: scenario,
params, relaycast, reference, ratio, target, met, machine); lines that know best how to
show themselves carry a ready ``row``. This module only renders, so adding a scenario
never means touching the report.
"""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.plots import plot_bars, plot_distribution, plot_scaling, scaling_series
from bench.report import _row as rtmp_row

Result = dict[str, Any]

HEADER = "| scenario | relaycast | reference | ratio | target | met | notes |"


def _first_line(command: list[str], pattern: str = r".+") -> str | None:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(pattern, out.stdout + out.stderr)
    return found.group(0).strip() if found else None


def versions() -> dict[str, str | None]:
    """The programs compared, as this machine has them (a result is only as good as this)."""
    from control_api.version import version

    return {
        "relaycast": version(),
        "python": sys.version.split()[0],
        "kernel": platform.release(),
        "nginx": _first_line(["nginx", "-v"], r"nginx/\S+"),
        "srt-live-transmit": _first_line(
            ["srt-live-transmit", "-version"], r"SRT Library version: \S+"
        ),
        "ffmpeg": _first_line(["ffmpeg", "-version"], r"ffmpeg version \S+"),
        "chromium": _first_line(["chromium", "--version"]),
    }


def _row(item: Result) -> str:
    if "row" in item:
        return "| " + " | ".join(str(cell) for cell in item["row"]) + " |"
    if item["scenario"] in ("A", "B", "C"):
        return rtmp_row(item)
    return _generic_row(item)


def _median(value: Any) -> Any:
    return value.get("median") if isinstance(value, dict) else value


def _cell(side: Result | None, key: str) -> str:
    value = _median((side or {}).get(key))
    return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


def _generic_row(item: Result) -> str:
    """SRT lines and anything else in the common shape: the metric named in params."""
    params = item["params"]
    key = "cpu_ms_per_stream_s"
    what = f"{item['scenario']}: {params.get('publishers', '')} x {params.get('bitrate_mbit', '')} "
    what += f"Mbit/s, loss {params.get('loss', 0):.0%}, CPU ms per stream-s"
    notes = "-"
    if "recovered_ratio" in (item["relaycast"] or {}):
        notes = (
            f"recovered {_cell(item['relaycast'], 'recovered_ratio')} vs "
            f"{_cell(item['reference'], 'recovered_ratio')}"
        )
    ratio = "-" if item["ratio"] is None else f"{item['ratio']:.3f}"
    cells = [what, _cell(item["relaycast"], key), _cell(item["reference"], key), ratio]
    cells += [item["target"], "yes" if item["met"] else "**no**", notes]
    return "| " + " | ".join(cells) + " |"


def markdown(results: list[Result], command: str, info: dict[str, Any], plots: list[Path]) -> str:
    machine = results[0].get("machine", {}) if results else {}
    met = sum(1 for item in results if item["met"])
    lines = [
        "# relaycast benchmark",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine.get('cpus')} x {machine.get('cpu_model')}, kernel {info['kernel']}, "
        f"Python {info['python']}, {machine.get('loop')}  ",
        "References: " + ", ".join(f"{k} {v}" for k, v in info.items() if k not in ("python",)),
        "",
        "Every reference was measured in the same run, interleaved with relaycast; figures "
        "are medians (min-max over repetitions). python-floor = a bare uvloop reader that "
        "only counts the bytes: what any asyncio server in Python can reach on that load.",
        "",
        f"{met} of {len(results)} lines meet their target.",
        "",
        HEADER,
        "|---|---|---|---|---|---|---|",
    ]
    lines += [_row(item) for item in results]
    if plots:
        lines += ["", "Plots:", ""]
        lines += [f"![{path.stem}](plots/{path.name})" for path in plots]
    return "\n".join(lines) + "\n"


def make_plots(results: list[Result], folder: Path) -> list[Path]:
    made: list[Path | None] = []
    for scenario, title in (
        ("A", "RTMP ingest: CPU per stream"),
        ("SRT-A", "SRT ingest: CPU per stream"),
        ("HLS-A", "HLS packaging (whole server): CPU per stream"),
    ):
        series = scaling_series(results, scenario, "publishers", "cpu_ms_per_stream_s")
        if scenario == "HLS-A" and not series:
            series = scaling_series(results, scenario, "streams", "cpu_ms_per_stream_s")
        made.append(
            plot_scaling(
                series,
                folder / f"{scenario.lower()}-cpu.png",
                title,
                "streams",
                "server CPU ms per stream-second",
            )
        )
    samples = {
        key.removesuffix("_s").replace("_", " "): value["samples"]
        for item in results
        if item["scenario"] == "HLS-B"
        for key, value in (item.get("relaycast") or {}).items()
        if isinstance(value, dict) and value.get("samples")
    }
    made.append(
        plot_distribution(samples, folder / "latency.png", "LL-HLS latencies (s)", "seconds")
    )
    load = {
        label: float(value)
        for item in results
        if item["scenario"] == "HLS-C"
        for label, value in (
            ("requests/s", item["relaycast"].get("requests_per_s")),
            ("server core %", item["relaycast"].get("server_core_percent")),
            ("part p95 ms", (item["relaycast"].get("probe_part_ms") or {}).get("p95")),
            ("CPU us per viewer-s", 1000 * (item["relaycast"].get("cpu_ms_per_viewer_s") or 0)),
        )
        if value is not None
    }
    made.append(plot_bars(load, folder / "viewers.png", "LL-HLS viewer load", "value"))
    return [path for path in made if path is not None]


def write_run(results: list[Result], stem: Path, command: str) -> list[Path]:
    """``stem``.json, ``stem``.md and ``plots/`` next to them; returns what was written."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    info = versions()
    plots = make_plots(results, stem.parent / "plots")
    payload = {"command": command, "versions": info, "results": results}
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    json_path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    md_path.write_text(markdown(results, command, info, plots))
    return [json_path, md_path, *plots]
