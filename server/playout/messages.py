"""What the event loop and a playout worker say to each other (pickled over its pipe).

Every message about media carries the generation (``gen``) of the ``Play`` it answers:
a skip starts a new generation, and whatever the worker had already sent for the old
one is dropped on arrival instead of being played.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.media.frame import CodecConfig, Frame


@dataclass(frozen=True, slots=True)
class Play:
    """Play ``path`` from ``start`` seconds. ``fresh``: new encoders and a timeline
    starting at ``video_at``/``audio_at`` (first item, or after a cut); otherwise the
    item follows the previous one on the same timeline."""

    gen: int
    item_id: str
    path: str
    start: float
    fresh: bool
    video_at: int = 0
    audio_at: int = 0


@dataclass(frozen=True, slots=True)
class Finish:
    """No next item: drain the encoders, then say ``Drained``."""

    gen: int


@dataclass(frozen=True, slots=True)
class Configs:
    gen: int
    video: CodecConfig
    audio: CodecConfig


@dataclass(frozen=True, slots=True)
class Started:
    """The item's first frame is at ``video_pts``, ``start`` seconds into its file."""

    gen: int
    item_id: str
    video_pts: int
    start: float
    remuxed: bool = False
    """Its packets go out as they are (``server.playout.remux``)."""


@dataclass(frozen=True, slots=True)
class Batch:
    gen: int
    frames: list[Frame]


@dataclass(frozen=True, slots=True)
class Ended:
    """The item is over (``error`` set when it broke); the next starts at ``video_end``."""

    gen: int
    item_id: str
    video_end: int
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Drained:
    gen: int


WorkerMessage = Configs | Started | Batch | Ended | Drained
