"""The channel benchmark's pure parts: the ffmpeg reference it runs, its result lines and
its place in ``python -m bench``."""

from __future__ import annotations

import itertools
from pathlib import Path

from bench.__main__ import BY_NAME
from bench.channel import _cpu_line, _drift_line, reference_command
from bench.preflight import missing


def test_the_reference_is_ffmpeg_re_concat_with_the_channels_x264_options(tmp_path: Path) -> None:
    items = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    cmd = reference_command(items, tmp_path, repeats=3)
    assert cmd[cmd.index("-f") + 1] == "concat" and "-re" in cmd
    assert (tmp_path / "list.txt").read_text().count("file ") == 6
    options = dict(itertools.pairwise(cmd))  # each flag with the word after it
    assert options["-preset"] == "veryfast" and options["-bf"] == "0"
    assert options["-g"] == "60" and options["-sc_threshold"] == "0"
    assert options["-b:v"] == "3000000" and options["-b:a"] == "128000"
    assert "pad=1280:720" in options["-vf"] and "fps=30" in options["-vf"]
    assert cmd[-1].endswith("index.m3u8")


def test_cpu_line_compares_with_ffmpeg() -> None:
    near = _cpu_line(0.30, 0.28, 8.0)
    assert near["ratio"] == round(0.30 / 0.28, 3) and near["met"] is True
    assert _cpu_line(0.40, 0.30, 8.0)["met"] is False
    assert _cpu_line(0.40, 0.0, 8.0)["ratio"] is None


def test_drift_line_of_a_short_simulation() -> None:
    line = _drift_line(0.05)
    assert line["met"] is True and line["params"]["items"] > 10


def test_channel_is_a_registered_scenario_needing_only_ffmpeg() -> None:
    assert BY_NAME["channel"].group == "channel"
    assert all("nginx" not in line and "chromium" not in line for line in missing(["channel"]))
