"""The benchmark's bookkeeping: preflight messages, the summary table, the plots."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bench import preflight, summary
from bench.__main__ import SCENARIOS, _selected

PNG = b"\x89PNG\r\n\x1a\n"


def _line(scenario: str, n: int, ours: float, ref: float, *, floor: bool = False) -> dict[str, Any]:
    name = "python-floor" if floor else "relaycast-ingest"
    return {
        "scenario": scenario,
        "params": {"publishers": n, "relaycast": name, "reference": "nginx-rtmp"},
        "relaycast": {
            "cpu_ms_per_stream_s": {"min": ours, "median": ours, "max": ours},
            "generator_core_percent": 3.0,
        },
        "reference": {"cpu_ms_per_stream_s": {"median": ref}},
        "ratio": ours / ref,
        "target": "ratio <= 2.0",
        "met": ours / ref <= 2.0,
        "machine": {"cpus": 2, "cpu_model": "test", "loop": "uvloop"},
    }


def test_missing_programs_are_named_with_their_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    problems = preflight.missing({"srt", "hls"})
    assert any("srt-live-transmit" in p and "srt-tools" in p for p in problems)
    assert any("ffmpeg" in p and "apt: ffmpeg" in p for p in problems)
    assert any("chromium" in p for p in problems)


def test_every_scenario_is_selectable_and_unknown_names_are_refused() -> None:
    assert [s.name for s in _selected("all")] == [s.name for s in SCENARIOS]
    assert [s.name for s in _selected("srt-b, HLS-A")] == ["srt-b", "hls-a"]
    with pytest.raises(SystemExit, match="unknown scenario"):
        _selected("rtmp-z")


def test_a_run_writes_json_markdown_and_plots(tmp_path: Path) -> None:
    results = [
        _line("A", 1, 15.0, 4.0),
        _line("A", 10, 7.5, 1.7),
        _line("A", 1, 5.0, 4.1, floor=True),
        _line("SRT-A", 1, 40.0, 18.0),
        {
            **_line("HLS-B", 1, 1.0, 1.0),
            "relaycast": {"part_listed_after_last_frame_s": {"p95": 0.04, "samples": [0.03, 0.04]}},
            "row": ["HLS-B: part listed", "0.04 s", "-", "-", "p95 <= 0.1 s", "yes", "-"],
        },
    ]
    written = summary.write_run(results, tmp_path / "bench-x", "python -m bench --quick")
    data = json.loads((tmp_path / "bench-x.json").read_text())
    assert data["command"] == "python -m bench --quick" and len(data["results"]) == 5
    assert set(data["versions"]) >= {"relaycast", "python", "nginx", "srt-live-transmit"}
    table = (tmp_path / "bench-x.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(results)  # header + one row per result
    assert all(row.count("|") == summary.HEADER.count("|") for row in rows)
    assert "HLS-B: part listed" in table and "SRT-A" in table
    plots = [path for path in written if path.suffix == ".png"]
    assert {path.name for path in plots} >= {"a-cpu.png", "srt-a-cpu.png", "latency.png"}
    for path in plots:
        assert path.read_bytes().startswith(PNG)
        assert f"plots/{path.name}" in table
    series = summary.scaling_series(results, "A", "publishers", "cpu_ms_per_stream_s")
    assert series["relaycast-ingest"] == {1.0: 15.0, 10.0: 7.5}
    assert series["nginx-rtmp"][1.0] == pytest.approx(4.05)  # two runs: their median


def test_a_reference_that_measured_no_cpu_gives_no_ratio_not_a_crash() -> None:
    from bench.scenarios import ratio_of

    ours = {"cpu_ms_per_stream_s": {"median": 13.3}}
    assert ratio_of(ours, {"cpu_ms_per_stream_s": {"median": 0.0}}, "cpu_ms_per_stream_s") is None
    assert ratio_of(ours, {"cpu_ms_per_stream_s": 3.325}, "cpu_ms_per_stream_s") == 4.0


def test_an_a_line_prints_the_pure_python_twin_beside_the_compiled_figure(
    tmp_path: Path,
) -> None:
    from bench.scenarios import _add_pure

    item = _line("A", 10, 1.8, 0.9)
    twin = {"cpu_ms_per_stream_s": {"min": 2.1, "median": 2.2, "max": 2.4, "runs": [2.1, 2.2]}}
    _add_pure(item, twin, "relaycast-ingest-pure", item["reference"])
    assert item["ratio_pure"] == pytest.approx(2.444, abs=1e-3)
    summary.write_run([item], tmp_path / "bench-x", "python -m bench --scenario rtmp-a")
    row = next(r for r in (tmp_path / "bench-x.md").read_text().splitlines() if "| A" in r)
    assert "| 1.80; pure 2.20 (2.10-2.40), ratio 2.444 |" in row
    series = summary.scaling_series([item], "A", "publishers", "cpu_ms_per_stream_s")
    assert series["relaycast-ingest-pure"] == {10.0: 2.2}


def test_a_targets_are_the_issues() -> None:
    from bench.scenarios import a_target

    assert [a_target("ingest", n) for n in (1, 10, 50, 200)] == [1.5] * 4
    assert [a_target("serve", n) for n in (1, 10, 50)] == [1.5, 1.0, 1.0]
