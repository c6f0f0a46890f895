"""Where a file's VOD segments begin and end, from its keyframes (pure, no file access).

A VOD playlist lists every segment with its exact duration, so the cut points are
decided once from the keyframe times of the lead track (video, or audio for audio-only
files, where every frame is a keyframe) with the same rule the live segmenter uses:
cut at the first keyframe once the segment is ``target`` seconds long. Segments are
then produced from the file one at a time, in any order, from their span alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from server.media.frame import TIMEBASE


@dataclass(frozen=True, slots=True)
class Keyframe:
    """A cut candidate: decode and presentation time of a lead-track keyframe (ticks)."""

    dts: int
    pts: int


@dataclass(frozen=True, slots=True)
class Span:
    """One segment: lead-track frames with ``dts`` in ``[dts, end_dts)`` and the other
    tracks' frames with ``pts`` in ``[pts, end_pts)`` (presentation times line up the
    tracks; decode order is what keeps a GOP whole)."""

    dts: int
    end_dts: int
    pts: int
    end_pts: int

    @property
    def seconds(self) -> float:
        return (self.end_pts - self.pts) / TIMEBASE


def cut(keyframes: Sequence[Keyframe], end_dts: int, end_pts: int, target: float) -> list[Span]:
    """The segments of a file whose lead track ends at ``end_dts``/``end_pts`` (ticks).

    ``keyframes`` in decode order; the first one opens the first segment. A keyframe
    closer than ``target`` to the current segment's start does not cut, so segments are
    at least ``target`` long except the last, and longer only when keyframes are sparse.
    """
    if not keyframes:
        return []
    limit = round(target * TIMEBASE)
    starts = [keyframes[0]]
    for key in keyframes[1:]:
        if key.pts - starts[-1].pts >= limit and key.dts < end_dts:
            starts.append(key)
    spans: list[Span] = []
    for here, after in zip(starts, [*starts[1:], None], strict=True):
        stop_dts = after.dts if after else end_dts
        stop_pts = after.pts if after else max(end_pts, here.pts + 1)
        spans.append(Span(here.dts, stop_dts, here.pts, stop_pts))
    return spans


def target_duration(spans: Sequence[Span], target: float) -> int:
    """EXT-X-TARGETDURATION: the configured one, or the longest segment's when keyframes
    are sparser (every rounded EXTINF must fit under it, RFC 8216 4.3.3.1)."""
    longest = max((s.seconds for s in spans), default=0.0)
    return max(math.ceil(target), math.floor(longest + 0.5))
