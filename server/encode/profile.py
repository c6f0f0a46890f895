"""What an encoder is asked to produce."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av


@dataclass(frozen=True, slots=True)
class VideoProfile:
    """H.264 output; ``keyint_seconds`` is the GOP when the caller forces no keyframes."""

    width: int
    height: int
    fps: Fraction
    bitrate: int
    encoder: str = "libx264"
    preset: str = "veryfast"
    keyint_seconds: float = 2.0

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0 or self.width % 2 or self.height % 2:
            raise ValueError(f"size must be positive and even, got {self.width}x{self.height}")
        if self.fps <= 0 or self.bitrate <= 0 or self.keyint_seconds <= 0:
            raise ValueError("fps, bitrate and keyint_seconds must be positive")


@dataclass(frozen=True, slots=True)
class AudioProfile:
    """AAC-LC output."""

    sample_rate: int = 48_000
    channels: int = 2
    bitrate: int = 128_000

    def __post_init__(self) -> None:
        if self.channels not in (1, 2) or self.sample_rate <= 0 or self.bitrate <= 0:
            raise ValueError("channels must be 1 or 2; sample_rate and bitrate positive")


def encoder_available(name: str) -> bool:
    """True when the local FFmpeg has a video encoder ``name`` that opens here.

    Opening a tiny context is the only honest test: FFmpeg lists hardware encoders
    (h264_nvenc, h264_vaapi, h264_qsv) whether or not the machine has the hardware.
    """
    try:
        codec = av.Codec(name, "w")
    except (av.FFmpegError, ValueError):
        return False
    if codec.type != "video":
        return False
    ctx = av.CodecContext.create(codec)
    assert isinstance(ctx, av.VideoCodecContext)
    ctx.width, ctx.height, ctx.pix_fmt = 64, 64, "yuv420p"
    ctx.time_base = Fraction(1, 25)
    try:
        ctx.open()
    except (av.FFmpegError, ValueError, OSError):
        return False
    return True
