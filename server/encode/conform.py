"""Fit any picture into a channel's frame: scale keeping the aspect ratio, pad black.

FFmpeg's own scale and pad filters do the work (one graph per input geometry, kept
while the geometry stays), so conforming costs what it costs the ffmpeg command line.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import av
import av.filter

from server.media.frame import TIMEBASE

_TICKS = Fraction(1, TIMEBASE)
_GRAPHS: dict[tuple[int, int, str, int, int], av.filter.Graph] = {}
_MAX_GRAPHS = 8


def fitted_size(src_w: int, src_h: int, width: int, height: int) -> tuple[int, int]:
    """The largest even size with the source's aspect ratio inside ``width`` x ``height``."""
    if src_w <= 0 or src_h <= 0:
        raise ValueError("source size must be positive")
    if src_w * height >= src_h * width:
        w, h = width, src_h * width // src_w
    else:
        w, h = src_w * height // src_h, height
    return max(2, w // 2 * 2), max(2, h // 2 * 2)


def letterbox(frame: av.VideoFrame, width: int, height: int) -> av.VideoFrame:
    """``frame`` scaled into ``width`` x ``height`` yuv420p, centred on black."""
    if frame.width == width and frame.height == height and frame.format.name == "yuv420p":
        return frame
    graph = _graph(frame, width, height)
    graph.push(frame)
    out = graph.pull()
    assert isinstance(out, av.VideoFrame)
    out.pts = frame.pts
    if frame.time_base is not None:
        out.time_base = frame.time_base
    return out


def _graph(frame: av.VideoFrame, width: int, height: int) -> av.filter.Graph:
    key = (frame.width, frame.height, frame.format.name, width, height)
    graph = _GRAPHS.get(key)
    if graph is not None:
        return graph
    if len(_GRAPHS) >= _MAX_GRAPHS:
        _GRAPHS.clear()
    w, h = fitted_size(frame.width, frame.height, width, height)
    graph = av.filter.Graph()
    src = graph.add_buffer(
        width=frame.width, height=frame.height, format=frame.format, time_base=_TICKS
    )
    chain = [
        src,
        graph.add("scale", f"{w}:{h}"),
        graph.add("pad", f"{width}:{height}:(ow-iw)/2:(oh-ih)/2:black"),
        graph.add("setsar", "1"),
        graph.add("format", "yuv420p"),
        graph.add("buffersink"),
    ]
    for a, b in itertools.pairwise(chain):
        a.link_to(b)
    graph.configure()
    _GRAPHS[key] = graph
    return graph
