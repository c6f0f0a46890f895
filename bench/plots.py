"""PNG plots of a benchmark run (matplotlib, no display needed).

A table says whether a target was met; a plot shows the shape: how cost per stream
falls (or does not) as streams are added, for relaycast and its reference side by
side, and how latencies are spread rather than just their p95.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: operators run this over ssh
import matplotlib.pyplot as plt

Result = dict[str, Any]


def _median(value: Any) -> float | None:
    if isinstance(value, Mapping):
        value = value.get("median")
    return float(value) if isinstance(value, int | float) else None


def scaling_series(
    results: Sequence[Result], scenario: str, x_param: str, metric: str
) -> dict[str, dict[float, float]]:
    """{series name: {x: median y}} for one scenario's lines: relaycast, its pure-Python
    twin when the line has one, and the reference.

    A reference measured in several runs of the invocation (e.g. next to relaycast and
    next to the Python floor) is one series: the median of its runs at each x.
    """
    points: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for item in results:
        params = item.get("params", {})
        if item.get("scenario") != scenario or x_param not in params:
            continue
        x = float(params[x_param])
        for side in ("relaycast", "relaycast_pure", "reference"):
            name = params.get(side, side)
            y = _median((item.get(side) or {}).get(metric))
            if y is not None:
                points[name][x].append(y)
    return {
        name: {x: statistics.median(ys) for x, ys in sorted(xs.items())}
        for name, xs in points.items()
    }


def plot_scaling(
    series: Mapping[str, Mapping[float, float]], path: Path, title: str, xlabel: str, ylabel: str
) -> Path | None:
    """Cost per stream against the number of streams, one line per server."""
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, xs in series.items():
        ax.plot(list(xs), list(xs.values()), marker="o", label=name)
    ax.set_xscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_distribution(
    samples: Mapping[str, Sequence[float]], path: Path, title: str, xlabel: str
) -> Path | None:
    """Histogram of latency samples, one per series, with p50/p95 in the legend."""
    samples = {name: values for name, values in samples.items() if values}
    if not samples:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, values in samples.items():
        ordered = sorted(values)
        p50 = ordered[len(ordered) // 2]
        p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
        ax.hist(ordered, bins=30, alpha=0.6, label=f"{name} (p50 {p50:.3g}, p95 {p95:.3g})")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("samples")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_bars(values: Mapping[str, float], path: Path, title: str, ylabel: str) -> Path | None:
    """One bar per measured quantity (viewer load, multistream), labelled with its value."""
    if not values:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    bars = ax.bar(list(values), list(values.values()))
    ax.bar_label(bars, fmt="%.3g")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.grid(True, axis="y", alpha=0.3)
    fig.autofmt_xdate(rotation=20)
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
