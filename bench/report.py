"""Write a run's result lines as JSON plus a short Markdown table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Result = dict[str, Any]


def _median(value: Any) -> Any:
    return value.get("median") if isinstance(value, dict) else value


def _fmt(value: Any, digits: int = 2) -> str:
    value = _median(value)
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _spread(value: Any, digits: int = 2) -> str:
    if isinstance(value, dict) and value.get("runs") and len(value["runs"]) > 1:
        return f"{_fmt(value, digits)} ({value['min']:.{digits}f}-{value['max']:.{digits}f})"
    return _fmt(value, digits)


def _row(item: Result) -> str:
    if "row" in item:  # lines that render their own cells (bench.hls_scenarios)
        return "| " + " | ".join(item["row"]) + " |"
    ours, ref, scenario = item["relaycast"], item["reference"] or {}, item["scenario"]
    params = item["params"]
    pair = f" [{params['relaycast']} vs {params['reference']}]" if "reference" in params else ""
    if scenario == "A":
        what = f"A{pair}: {params['publishers']} x 4 Mbit/s, CPU ms per stream-s"
        mine, theirs = ours["cpu_ms_per_stream_s"], ref.get("cpu_ms_per_stream_s")
        gen = _fmt(ours["generator_core_percent"], 0) + " %"
    elif scenario == "B":
        what = f"B{pair}: 1 publisher flat out, MB per CPU-s"
        mine, theirs = ours["mb_per_cpu_s"], ref.get("mb_per_cpu_s")
        gen = _fmt(ours["generator_core_percent"], 0) + " %"
    else:
        what = f"C: {item['params']['readers']} bus readers, CPU ms per reader-s"
        mine, theirs, gen = ours["cpu_ms_per_reader_s"], None, "-"
    digits = 3 if scenario == "C" else 2
    mine_text, theirs_text = _spread(mine, digits), _spread(theirs, digits)
    if ours.get("saturated"):
        mine_text += " (saturated)"
    twin = item.get("relaycast_pure")
    if twin is not None:  # the pure-Python path, measured in the same run
        key = "cpu_ms_per_stream_s" if scenario == "A" else "mb_per_cpu_s"
        mine_text += f"; pure {_spread(twin[key], digits)}, ratio {_fmt(item['ratio_pure'], 3)}"
    if ref.get("saturated"):
        theirs_text += " (saturated)"
    cells = [what, mine_text, theirs_text, _fmt(item["ratio"], 3)]
    cells += [item["target"], "yes" if item["met"] else "**no**", gen]
    return "| " + " | ".join(cells) + " |"


def markdown(results: list[Result], command: str) -> str:
    machine = results[0]["machine"] if results else {}
    lines = [
        "# RTMP benchmark: relaycast against nginx-rtmp",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine.get('cpus')} x {machine.get('cpu_model')}, kernel "
        f"{machine.get('kernel')}, Python {machine.get('python')}, {machine.get('loop')}, "
        f"nginx {machine.get('nginx')} + libnginx-mod-rtmp",
        "",
        "Medians (min-max over repetitions); the reference was measured in the same run. "
        "relaycast-ingest = relaycast's RTMP ingest plane (`python -m bench.plane`), "
        "relaycast = the whole `relaycast serve` (ingest + HLS packaging); "
        "nginx-rtmp-hls = nginx-rtmp with `hls on`.",
        "",
        "| scenario | relaycast | nginx-rtmp | ratio | target | met | generator CPU |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [_row(item) for item in results]
    for item in results:
        if item["scenario"] == "C":
            ours = item["relaycast"]
            lines += [
                "",
                "Scenario C details (medians): ingest alone "
                f"{_fmt(ours['ingest_only_cpu_ms_per_s'])} ms/s, with "
                f"{item['params']['readers']} readers {_fmt(ours['with_readers_cpu_ms_per_s'])}"
                f" ms/s; publisher {_fmt(ours['publisher_mbit_all_reading'])} Mbit/s all "
                f"reading vs {_fmt(ours['publisher_mbit_one_stalled'])} Mbit/s with one "
                f"stalled; RSS +{_fmt(ours['rss_growth_mib_during_stall'], 1)} MiB during the "
                f"stall; stalled reader dropped {_fmt(ours['stalled_reader_dropped_frames'])} "
                f"frames in {_fmt(ours['stalled_reader_resyncs'])} resync(s).",
            ]
    return "\n".join(lines) + "\n"


def write_report(results: list[Result], stem: Path, command: str) -> None:
    stem.parent.mkdir(parents=True, exist_ok=True)
    payload = {"command": command, "results": results}
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(results, command))
