"""``python -m bench --quick`` end to end on a small selection: the outputs are well formed.

The figures are not checked (machines are noisy); that a run against the real nginx-rtmp
produces a parseable JSON with every sample, a table and plots is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_program

# it measures CPU: alone, last (scripts/test.sh)
pytestmark = [pytest.mark.serial, pytest.mark.solo]

ROOT = Path(__file__).resolve().parents[2]


def _run_quick(out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--scenario",
            "rtmp-a,bus",
            "--publishers",
            "1",
            "--duration",
            "3",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_quick_bench_writes_json_table_and_plots(tmp_path: Path) -> None:
    require_program("nginx")
    run = _run_quick(tmp_path)
    assert run.returncode in (0, 1), run.stderr[-3000:]  # 1 = a target was missed
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert {item["name"] for item in lines} == {"rtmp-a", "bus"}, run.stderr[-3000:]
    [data_file] = tmp_path.glob("bench-*.json")
    data = json.loads(data_file.read_text())
    assert len(data["results"]) == len(lines) >= 3  # relaycast, python-floor, bus
    servers = {item["params"].get("relaycast") for item in data["results"]}
    assert {"relaycast-ingest", "python-floor"} <= servers
    for item in data["results"]:
        assert {"scenario", "params", "relaycast", "ratio", "target", "met"} <= set(item)
    [ingest] = [i for i in data["results"] if i["params"].get("relaycast") == "relaycast-ingest"]
    assert ingest["relaycast_pure"]["cpu_ms_per_stream_s"]["median"] > 0  # measured beside
    assert "; pure " in data_file.with_suffix(".md").read_text()
    table = data_file.with_suffix(".md").read_text()
    assert table.count("\n| ") == len(lines) + 1  # header + one row each
    plot = tmp_path / "plots" / "a-cpu.png"
    assert plot.read_bytes().startswith(b"\x89PNG")
