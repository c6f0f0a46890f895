"""What the event loop and a transcode worker process say to each other over the pipe.

Parent to child: the ``Job`` (once, as the process argument), then source ``Frame``s,
``CodecConfig``s and ``RESTART`` (the source's timestamps restarted). Child to parent:
``Ready`` once the encoders are open, a ``Batch`` per source item taken, ``Failed``
when an encoder cannot go on. Everything here pickles (plain dataclasses, bus frames).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from server.media.frame import CodecConfig, Frame

from .ladder import Rendition

RESTART = "restart"
"""The source's timestamps restarted (publisher reconnected): decoders start over."""

AUDIO = -1
"""``Batch.frames`` index of audio frames: one audio track shared by every rendition."""


@dataclass(frozen=True, slots=True)
class Job:
    """Everything a worker needs to open its decoders and encoders."""

    renditions: tuple[Rendition, ...]
    video: CodecConfig
    audio: CodecConfig | None
    encoder: str
    preset: str
    audio_bitrate: int
    keyint_seconds: float = 2.0


@dataclass(frozen=True, slots=True)
class Ready:
    """The encoders are open: each rendition's video config, and the shared audio one."""

    video: tuple[CodecConfig, ...]
    audio: CodecConfig | None


@dataclass(slots=True)
class Batch:
    """What came out after the child took one more source item.

    ``frames`` pairs a rendition index (or ``AUDIO``) with a frame, in output order;
    ``shown`` is the source pts of the newest picture every rendition has output (the
    parent measures the lag from it); ``restarted`` echoes a ``RESTART`` in order.
    """

    frames: list[tuple[int, Frame]] = field(default_factory=list)
    shown: int | None = None
    restarted: bool = False


@dataclass(frozen=True, slots=True)
class Failed:
    """The worker cannot go on (an encoder or decoder failed to open or run)."""

    reason: str
