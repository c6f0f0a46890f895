"""Named bounds for the bus; every queue here has one (architecture principle 3)."""

from __future__ import annotations

from dataclasses import dataclass

from server.media.frame import TIMEBASE

MIN_READER_FRAMES = 16
"""A reader ring must hold at least the collapsed markers plus a few frames."""


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """Per-stream bounds.

    ``gop_*`` bound the cache of frames since the latest video keyframe that late joiners
    start from; when a GOP outgrows them the cache is dropped until the next keyframe
    (late joiners then wait for it). Audio-only streams keep a sliding window instead,
    bounded by ``audio_window_*``. ``reader_*`` are the defaults for a reader's ring.
    """

    gop_max_frames: int = 2048
    gop_max_bytes: int = 32 * 1024 * 1024
    audio_window_frames: int = 128
    audio_window_ticks: int = 2 * TIMEBASE
    reader_max_frames: int = 2048
    reader_max_bytes: int = 32 * 1024 * 1024

    def __post_init__(self) -> None:
        for name in ("gop_max_frames", "gop_max_bytes", "audio_window_frames", "reader_max_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.audio_window_ticks < 0:
            raise ValueError("audio_window_ticks must not be negative")
        if self.reader_max_frames < MIN_READER_FRAMES:
            raise ValueError(f"reader_max_frames must be at least {MIN_READER_FRAMES}")
