"""What a reader receives besides frames: in-band markers, in publish order.

Markers travel in the same ring as frames so a reader always sees a configuration change
before the first frame that needs it and a discontinuity exactly where it happened.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from server.media.frame import CodecConfig, Frame, TrackKind


@dataclass(frozen=True, slots=True)
class ConfigChange:
    """The codec configuration of ``config.track`` is now ``config``."""

    config: CodecConfig


@dataclass(frozen=True, slots=True)
class MetadataChange:
    """The publisher's stream metadata (e.g. onMetaData) is now ``metadata``."""

    metadata: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TracksAnnounced:
    """The tracks the source said it will send (MPEG-TS PMT, RTMP onMetaData), which may
    come before all their configurations do: a consumer that builds one container for
    all tracks (HLS init segment) can wait, bounded, for the missing ones."""

    tracks: frozenset[TrackKind]


@dataclass(frozen=True, slots=True)
class Discontinuity:
    """The publisher reconnected inside the reconnect window; timestamps may jump here."""


@dataclass(frozen=True, slots=True)
class EndOfStream:
    """Nothing follows: the stream ended (or this reader was closed)."""

    reason: str = ""


Marker = ConfigChange | MetadataChange | TracksAnnounced | Discontinuity
StreamItem = Frame | Marker
BusItem = StreamItem | EndOfStream
