"""Synthetic pictures and sounds for encoder tests (no files, no peers)."""

from __future__ import annotations

import math
from array import array

import av


def picture(width: int, height: int, shade: int = 128, fmt: str = "yuv420p") -> av.VideoFrame:
    """A flat grey picture: enough for an encoder, cheap to make."""
    frame = av.VideoFrame(width, height, "yuv420p")
    for i, plane in enumerate(frame.planes):
        plane.update(bytes([shade if i == 0 else 128]) * plane.buffer_size)
    return frame if fmt == "yuv420p" else frame.reformat(format=fmt)


def tone(samples: int, rate: int, layout: str = "mono", start: int = 0) -> av.AudioFrame:
    """A 440 Hz sine as packed 16-bit samples."""
    channels = 1 if layout == "mono" else 2
    data = array("h")
    for n in range(start, start + samples):
        value = int(8000 * math.sin(2 * math.pi * 440 * n / rate))
        data.extend([value] * channels)
    frame = av.AudioFrame(format="s16", layout=layout, samples=samples)
    frame.planes[0].update(data.tobytes())
    frame.sample_rate = rate
    return frame
