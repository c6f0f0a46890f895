"""Which renditions a stream gets: its quality's ladder, cut to what the source can fill.

Pure, so the choice is tested without encoders: a rung taller than the source would only
upscale (more bits, no more detail), so it is left out; widths follow the source's aspect
ratio, rounded to even (H.264 4:2:0 needs even sizes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from server.settings import Rung

SOURCE = "source"
"""The rendition name of the source itself (destinations' default ``rendition``)."""

PASSTHROUGH = "passthrough"


@dataclass(frozen=True, slots=True)
class Rendition:
    """One rung as encoded for one source."""

    name: str
    width: int
    height: int
    bitrate: int
    fps: Fraction | None  # None: the source's frame rate is unknown; frames carried as is
    max_fps: float


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def output_fps(source_fps: float | None, max_fps: float) -> Fraction | None:
    """The rung's frame rate: the source's, halved (and so on) until within ``max_fps``.

    Dropping every other frame keeps the kept frames on the source's timestamps, so
    keyframes (always kept) and segment cuts stay aligned with the source.
    """
    if not source_fps or source_fps <= 0:
        return None
    fps = Fraction(source_fps).limit_denominator(1001)
    while fps > Fraction(max_fps).limit_denominator(1001) * Fraction(1001, 1000):
        fps /= 2
    return fps


def select(
    rungs: Sequence[Rung], width: int, height: int, source_fps: float | None
) -> list[Rendition]:
    """The renditions of a ``width`` x ``height`` source (no rung taller than it)."""
    if width <= 0 or height <= 0:
        return []
    out = []
    for rung in rungs:
        if rung.height > height:
            continue
        out.append(
            Rendition(
                name=rung.name,
                width=_even(width * rung.height / height),
                height=_even(rung.height),
                bitrate=rung.video_bitrate,
                fps=output_fps(source_fps, rung.max_fps),
                max_fps=rung.max_fps,
            )
        )
    return out


def ladder_for(ladders: Mapping[str, Sequence[Rung]], quality: str) -> Sequence[Rung]:
    """The rungs of ``quality``; passthrough (and an unknown quality) has none."""
    if quality == PASSTHROUGH:
        return ()
    return ladders.get(quality, ())


def rung_names(ladders: Mapping[str, Sequence[Rung]]) -> frozenset[str]:
    """Every rung name any ladder has (what a destination's ``rendition`` may name)."""
    return frozenset(r.name for rungs in ladders.values() for r in rungs)
