"""The VOD benchmark's pure parts: its result line and its place in ``python -m bench``."""

from __future__ import annotations

from bench.__main__ import BY_NAME
from bench.preflight import missing
from bench.vod import result_line


def test_result_line_reports_p95_against_the_target() -> None:
    fast = result_line([float(ms) for ms in range(1, 101)], 200, 1024 * 1024, 3)
    assert fast["relaycast"] == {"p50_ms": 50.5, "p95_ms": 95.0, "max_ms": 100.0}
    assert fast["met"] is False and fast["row"][5] == "**no**"
    assert fast["params"] == {"concurrency": 200, "segment_bytes": 1048576, "rounds": 3}
    slow_tail = result_line([10.0] * 95 + [900.0] * 5, 200, 2048, 1)
    assert slow_tail["relaycast"]["p95_ms"] == 10.0 and slow_tail["met"] is True
    assert slow_tail["row"][1] == "10.0" and "2 KiB" in slow_tail["row"][0]


def test_vod_is_a_registered_scenario_needing_only_ffmpeg() -> None:
    assert BY_NAME["vod"].group == "vod"
    assert all("nginx" not in line and "chromium" not in line for line in missing(["vod"]))


def test_nginx_beside_it_is_context_not_the_criterion() -> None:
    ours = [40.0] * 100
    nginx = [20.0] * 100
    line = result_line(ours, 200, 1024 * 1024, 3, nginx)
    assert line["reference"] == {"p50_ms": 20.0, "p95_ms": 20.0, "max_ms": 20.0}
    assert line["row"][2:4] == ["20.0", "2.00"] and line["met"] is True
    assert result_line([60.0] * 100, 200, 1024, 1, [70.0] * 100)["met"] is False
