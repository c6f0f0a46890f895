"""The one model of a media frame (and, re-exported, of a codec configuration).

Every ingest path (FLV tags over RTMP, MPEG-TS over SRT, files) turns what arrived into
these objects, and every output (HLS, push, record) starts from them, so no output ever
needs to know which protocol a stream came in on.

Compiled with mypyc (``server/accel_modules.txt``, issue 20): one ``Frame`` is built per
access unit on every ingest path, and the compiled FLV parser and bus then build and
read it natively. This source stays the pure-Python reference. The types that must be
one per process whichever twin runs (``TrackKind``, ``Codec``, ``CodecConfig``, the
clock constants) are defined in ``server.media.tracks`` and re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import FunctionType

from .tracks import TICKS_PER_MS as TICKS_PER_MS
from .tracks import TIMEBASE as TIMEBASE
from .tracks import Codec as Codec
from .tracks import CodecConfig as CodecConfig
from .tracks import TrackKind as TrackKind


@dataclass(frozen=True, slots=True)
class Frame:
    """One access unit in decode order.

    Frozen because the bus hands the same object to every reader; ``payload`` is ``bytes``
    so it can never change under a reader. Canonical payload forms (the MP4 sample forms,
    which FLV also uses, so RTMP in/out and fMP4 need no conversion):

    * H.264/H.265: NAL units each prefixed by a 4-byte big-endian length (AVCC/HVCC).
    * AV1: the temporal unit's OBUs (low-overhead format); VP9: the frame data.
    * AAC: one raw access unit without ADTS header; Opus: one Opus packet.

    Compiled, this is a native class (attributes in C fields, no ``__dict__``, like the
    slots of the pure class); the dataclass methods (equality, hash, repr, the frozen
    ``__setattr__``/``__delattr__``, ``dataclasses.replace``/``fields``) are the same
    in both twins.
    """

    track: TrackKind
    codec: str
    dts: int
    pts: int
    keyframe: bool
    payload: bytes

    def __init__(
        self, track: TrackKind, codec: str, dts: int, pts: int, keyframe: bool, payload: bytes
    ) -> None:
        # One per access unit on every ingest path. Compiled, these are stores into the
        # native object's fields (the frozen ``__setattr__`` only guards interpreted
        # code). Interpreted, that ``__setattr__`` would refuse them: the pure twin runs
        # ``_init_slots`` instead (installed below), same fields in the same order.
        self.track = track  # type: ignore[misc]
        self.codec = codec  # type: ignore[misc]
        self.dts = dts  # type: ignore[misc]
        self.pts = pts  # type: ignore[misc]
        self.keyframe = keyframe  # type: ignore[misc]
        self.payload = payload  # type: ignore[misc]

    def __reduce__(self) -> tuple[type[Frame], tuple[TrackKind, str, int, int, bool, bytes]]:
        # Worker processes (playout, renditions) send frames over a pipe by the batch. The
        # dataclass's own pickling goes through ``__getstate__``/``__setstate__`` in
        # Python (``fields()`` and a setattr per field, per frame), and a native class
        # has no slots for them to use: a constructor call is a third of the cost on both
        # sides, and the same in both twins.
        return (Frame, (self.track, self.codec, self.dts, self.pts, self.keyframe, self.payload))

    @property
    def cts(self) -> int:
        """Composition offset in ticks (pts - dts); non-zero only with B-frames."""
        return self.pts - self.dts


def _init_slots(
    self: Frame, track: TrackKind, codec: str, dts: int, pts: int, keyframe: bool, payload: bytes
) -> None:
    """The pure twin's ``Frame.__init__``: sets the slots through their descriptors,
    bypassing the frozen ``__setattr__`` (the generated frozen ``__init__`` calls
    ``object.__setattr__`` per field, about twice the cost)."""
    _set_track(self, track)
    _set_codec(self, codec)
    _set_dts(self, dts)
    _set_pts(self, pts)
    _set_keyframe(self, keyframe)
    _set_payload(self, payload)


INTERPRETED = isinstance(vars(Frame)["__init__"], FunctionType)
"""True in the pure twin (its ``__init__`` is a Python function), False compiled."""

if INTERPRETED:
    _set_track, _set_codec, _set_dts, _set_pts, _set_keyframe, _set_payload = [
        vars(Frame)[name].__set__
        for name in ("track", "codec", "dts", "pts", "keyframe", "payload")
    ]
    _init_slots.__qualname__ = "Frame.__init__"
    setattr(Frame, "__init__", _init_slots)  # noqa: B010 - mypy forbids assigning a method


def ms_to_ticks(ms: int) -> int:
    """Convert an RTMP/FLV millisecond timestamp to ticks of ``TIMEBASE``."""
    return ms * TICKS_PER_MS


def ticks_to_ms(ticks: int) -> int:
    """Convert ticks to whole milliseconds (floor), as FLV/RTMP timestamps need."""
    return ticks // TICKS_PER_MS
