"""The renditions benchmark's pure parts: the reference ffmpeg makes the server's ladder
with the worker's encoder options, and the CPU bookkeeping counts a worker born late."""

from __future__ import annotations

from pathlib import Path

from bench.__main__ import BY_NAME
from bench.abr import _percentile, _spent, ffmpeg_ladder, ladder
from bench.preflight import missing


def _after(cmd: list[str], flag: str) -> list[str]:
    return [cmd[i + 1] for i, arg in enumerate(cmd) if arg == flag]


def test_the_reference_makes_the_servers_ladder_with_the_workers_options(tmp_path: Path) -> None:
    rungs = ladder()
    assert [(r.name, r.width, r.height, r.bitrate) for r in rungs] == [
        ("720p", 1280, 720, 3_000_000),
        ("480p", 854, 480, 1_200_000),
        ("360p", 640, 360, 800_000),
    ]
    cmd = ffmpeg_ladder(Path("sample.flv"), rungs, 12.0, tmp_path)
    graph = _after(cmd, "-filter_complex")[0]
    assert graph.startswith("[0:v]split=3")  # decoded once
    assert "scale=854:480:flags=bilinear" in graph and "scale=640:360:flags=bilinear" in graph
    assert _after(cmd, "-b:v") == ["3000000", "1200000", "800000"]
    assert _after(cmd, "-maxrate") == ["3000000", "1200000", "800000"]
    assert set(_after(cmd, "-preset")) == {"veryfast"} and set(_after(cmd, "-bf")) == {"0"}
    assert _after(cmd, "-g") == ["60"] * 3 and _after(cmd, "-forced-idr") == ["1"] * 3
    assert _after(cmd, "-force_key_frames") == ["source"] * 3
    assert _after(cmd, "-c:a") == ["copy"] * 3 and _after(cmd, "-t") == ["12.0"]
    assert [Path(p).parent.name for p in cmd if p.endswith(".m3u8")] == ["720p", "480p", "360p"]


def test_cpu_of_a_process_born_in_the_window_counts_from_zero() -> None:
    assert _spent({1: 10.0}, {1: 12.5, 2: 0.5}) == 3.0


def test_percentiles_of_part_lags() -> None:
    assert _percentile([], 95) is None and _percentile([400.0], 95) == 400.0
    assert _percentile([float(v) for v in range(1, 101)], 95) == 95.05


def test_abr_is_a_registered_scenario_needing_only_ffmpeg() -> None:
    assert BY_NAME["abr"].group == "abr"
    assert all("nginx" not in line and "chromium" not in line for line in missing(["abr"]))
