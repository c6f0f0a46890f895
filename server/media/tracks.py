"""Track kinds, codec names, the media clock and the codec configuration.

They live apart from ``Frame`` (``server.media.frame``) because that module is compiled
(issue 20) and has a pure-Python twin the tests load beside it: these types must exist
once per process, whichever twin made a frame. An enum member of one twin is not the
member of the other (``frame.track is TrackKind.VIDEO`` would fail across them), and a
configuration built by a pure parser must be the class every output checks for. None
of them is on the per-frame path's construction cost, so nothing is lost by keeping
them interpreted. ``server.media.frame`` re-exports every name: import them from there.
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
