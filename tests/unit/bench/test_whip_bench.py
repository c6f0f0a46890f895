"""The whip scenario's judgement and its process-tree CPU, without a server."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from bench.g2g import summarize
from bench.scenarios import ScenarioConfig
from bench.whip import _g2g, _results, tree_cpu

CONFIG = ScenarioConfig.make(quick=True)


def _run(whip_cpu: float, rtmp_cpu: float, viewers_cpu: float, mbit: float = 4.0) -> list[Any]:
    idle = {"cpu_ms_per_s": 2.0}
    rtmp = {"cpu_ms_per_s": rtmp_cpu, "ingest_mbit": 4.0}
    whip = {"cpu_ms_per_s": whip_cpu, "children_cpu_ms_per_s": 5.0, "ingest_mbit": 4.0}
    step = {"cpu_ms_per_s": viewers_cpu, "mbit_per_viewer": mbit, "connected": 5}
    return _results(idle, rtmp, whip, [step], (5,), CONFIG)


def test_publisher_ratio_subtracts_the_idle_server_and_judges_two_x() -> None:
    pub, viewers = _run(whip_cpu=22.0, rtmp_cpu=12.0, viewers_cpu=47.0)
    assert pub["ratio"] == 2.0 and pub["met"]
    assert viewers["relaycast"]["cpu_ms_per_viewer_s"] == 5.0  # (47 - 22) / 5
    assert viewers["met"]
    assert not _run(whip_cpu=23.0, rtmp_cpu=12.0, viewers_cpu=47.0)[0]["met"]


def test_viewers_that_do_not_get_the_stream_fail_the_step() -> None:
    assert not _run(whip_cpu=22.0, rtmp_cpu=12.0, viewers_cpu=47.0, mbit=1.0)[1]["met"]


def test_tree_cpu_includes_live_children() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in tree_cpu(os.getpid())
    finally:
        child.kill()
        child.wait()


def test_glass_to_glass_percentiles_and_target() -> None:
    figures = summarize([float(ms) for ms in range(1, 101)])
    assert figures == {"frames": 100, "p50_ms": 50.5, "p95_ms": 95.0, "max_ms": 100.0}
    assert _g2g(figures, CONFIG)["met"]
    assert not _g2g(summarize([600.0] * 10), CONFIG)["met"]
    assert not _g2g(summarize([]), CONFIG)["met"]
