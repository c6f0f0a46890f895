"""Per-stream fan-out: one Stream per live stream, one bounded Reader per consumer.

``Stream.publish`` is synchronous and never waits on a reader; a reader that falls behind
loses frames up to the next video keyframe (counted), never memory or the publisher's time.
"""

from .errors import BusError, StreamEndedError, StreamExistsError
from .grant import PlanLimits, StreamGrant
from .items import (
    BusItem,
    ConfigChange,
    Discontinuity,
    EndOfStream,
    Marker,
    MetadataChange,
    StreamItem,
    TracksAnnounced,
)
from .limits import StreamLimits
from .reader import Reader, ReaderStats
from .registry import Registry
from .stream import Stream, StreamStats

__all__ = [
    "BusError",
    "BusItem",
    "ConfigChange",
    "Discontinuity",
    "EndOfStream",
    "Marker",
    "MetadataChange",
    "PlanLimits",
    "Reader",
    "ReaderStats",
    "Registry",
    "Stream",
    "StreamEndedError",
    "StreamExistsError",
    "StreamGrant",
    "StreamItem",
    "StreamLimits",
    "StreamStats",
    "TracksAnnounced",
]
