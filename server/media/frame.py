"""The one model of a media frame and of a codec configuration.

Every ingest path (FLV tags over RTMP, MPEG-TS over SRT, files) turns what arrived into
these objects, and every output (HLS, push, record) starts from them, so no output ever
needs to know which protocol a stream came in on.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

TIMEBASE = 90_000
"""Ticks per second of every ``dts``/``pts`` (MPEG-TS clock; RTMP milliseconds x 90)."""

TICKS_PER_MS = TIMEBASE // 1000


class TrackKind(enum.Enum):
    """What a track carries; one video and one audio track per stream in v1."""

    VIDEO = "video"
    AUDIO = "audio"
    DATA = "data"

    # Members are singletons compared by identity: the identity hash fits, and is
    # computed in C. ``Enum.__hash__`` is a Python call, paid for every lookup of the
    # per-track dicts every frame goes through (bus, HLS, recorder, pushers).
    __hash__ = object.__hash__


class Codec(enum.StrEnum):
    """Canonical codec names used in ``Frame.codec`` / ``CodecConfig.codec``.

    A ``StrEnum`` so plain strings compare equal and configs stay readable in logs and JSON.
    """

    H264 = "h264"
    H265 = "h265"
    AV1 = "av1"
    VP9 = "vp9"
    AAC = "aac"
    OPUS = "opus"


@dataclass(frozen=True, slots=True)
class Frame:
    """One access unit in decode order.

    Frozen because the bus hands the same object to every reader; ``payload`` is ``bytes``
    so it can never change under a reader. Canonical payload forms (the MP4 sample forms,
    which FLV also uses, so RTMP in/out and fMP4 need no conversion):

    * H.264/H.265: NAL units each prefixed by a 4-byte big-endian length (AVCC/HVCC).
    * AV1: the temporal unit's OBUs (low-overhead format); VP9: the frame data.
    * AAC: one raw access unit without ADTS header; Opus: one Opus packet.
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
        # One per access unit on every ingest path: the generated frozen __init__ calls
        # object.__setattr__ per field, about twice the cost of setting the slots
        # directly. Same fields, order, equality, hash and immutability.
        _SET_TRACK(self, track)
        _SET_CODEC(self, codec)
        _SET_DTS(self, dts)
        _SET_PTS(self, pts)
        _SET_KEYFRAME(self, keyframe)
        _SET_PAYLOAD(self, payload)

    def __reduce__(self) -> tuple[type[Frame], tuple[TrackKind, str, int, int, bool, bytes]]:
        # Worker processes (playout, renditions) send frames over a pipe by the batch. The
        # dataclass's own pickling goes through ``__getstate__``/``__setstate__`` in
        # Python (``fields()`` and a setattr per field, per frame): a constructor call is
        # a third of the cost on both sides.
        return (Frame, (self.track, self.codec, self.dts, self.pts, self.keyframe, self.payload))

    @property
    def cts(self) -> int:
        """Composition offset in ticks (pts - dts); non-zero only with B-frames."""
        return self.pts - self.dts


_SET_TRACK, _SET_CODEC, _SET_DTS, _SET_PTS, _SET_KEYFRAME, _SET_PAYLOAD = (
    Frame.__dict__[name].__set__ for name in ("track", "codec", "dts", "pts", "keyframe", "payload")
)


@dataclass(frozen=True, slots=True)
class CodecConfig:
    """Decoder configuration of one track, replayed to late joiners before any frame.

    ``extradata`` is the record MP4 and FLV carry (avcC / hvcC / av1C / vpcC body,
    AudioSpecificConfig, OpusHead); the other fields are parsed from it once so outputs
    (playlists, onMetaData, init segments) do not re-parse. 0 / ``None`` means unknown.
    ``profile`` is profile_idc for video and the audio object type for AAC.
    """

    track: TrackKind
    codec: str
    extradata: bytes
    width: int = 0
    height: int = 0
    profile: int = 0
    level: int = 0
    fps: float | None = None
    sample_rate: int = 0
    channels: int = 0


def ms_to_ticks(ms: int) -> int:
    """Convert an RTMP/FLV millisecond timestamp to ticks of ``TIMEBASE``."""
    return ms * TICKS_PER_MS


def ticks_to_ms(ticks: int) -> int:
    """Convert ticks to whole milliseconds (floor), as FLV/RTMP timestamps need."""
    return ticks // TICKS_PER_MS
