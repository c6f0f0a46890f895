"""The channel benchmark's pure parts: the ffmpeg reference it runs, its result lines and
its place in ``python -m bench``."""

from __future__ import annotations

import itertools
from pathlib import Path

from bench.__main__ import BY_NAME
from bench.channel import _cpu_line, _drift_line, _remux_line, reference_command
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
    near = _cpu_line([0.30], [0.28], 8.0)
    assert near["ratio"] == round(0.30 / 0.28, 3) and near["met"] is True
    assert _cpu_line([0.40], [0.30], 8.0)["met"] is False
    assert _cpu_line([0.40], [0.0], 8.0)["ratio"] is None


def test_cpu_line_takes_the_median_of_the_rounds_ratios_and_keeps_every_sample() -> None:
    """Each round's pair ran side by side: the ratio is the median of the rounds' ratios
    (not the ratio of two medians from different rounds), and one noisy ffmpeg window
    does not decide it."""
    ours, ffmpeg = [0.33, 0.30, 0.36, 0.31], [0.30, 0.20, 0.30, 0.30]
    line = _cpu_line(ours, ffmpeg, 8.0)
    ratios = [a / b for a, b in zip(ours, ffmpeg, strict=True)]
    assert line["ratios"] == [round(r, 3) for r in ratios]
    assert line["ratio"] == round((1.1 + 1.2) / 2, 3)  # the middle two of 1.03, 1.1, 1.2, 1.5
    assert line["met"] is False
    assert line["relaycast"] == {"cpu_s_per_s": 0.32, "samples": ours}
    assert line["reference"] == {"ffmpeg_cpu_s_per_s": 0.3, "samples": ffmpeg}
    assert line["params"]["rounds"] == 4 and len(line["row"]) == 7


def test_remux_line_pairs_each_remuxed_window_with_its_rounds_conformed_one() -> None:
    line = _remux_line([0.02, 0.03, 0.02], [0.40, 0.30, 0.20], 8.0)
    assert line["ratios"] == [0.05, 0.1, 0.1] and line["ratio"] == 0.1 and line["met"] is True
    assert line["reference"]["samples"] == [0.40, 0.30, 0.20]
    assert _remux_line([0.1], [0.3], 8.0)["met"] is False


def test_drift_line_of_a_short_simulation() -> None:
    line = _drift_line(0.05)
    assert line["met"] is True and line["params"]["items"] > 10


def test_channel_is_a_registered_scenario_needing_only_ffmpeg() -> None:
    assert BY_NAME["channel"].group == "channel"
    assert all("nginx" not in line and "chromium" not in line for line in missing(["channel"]))
