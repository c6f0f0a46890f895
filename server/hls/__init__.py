"""HLS / LL-HLS packaging of live streams: pure segmenter, playlists, blocking reload.

The pure parts (segmenter, views, playlists, names, blocking-reload decisions) hold the
logic so they can be tested without a loop; the bus-reading task (:mod:`.packager`) and
the HTTP handlers (:mod:`.http`) stay thin: they feed bus items into a ``Segmenter``
and serve what it exposes.
"""

from .blocking import (
    BadDirective,
    BlockingReload,
    Decision,
    Directives,
    Edge,
    Outcome,
    parse_directives,
)
from .buffer import PartBuffer
from .names import MASTER_PLAYLIST, MEDIA_PLAYLIST, Resource, ResourceKind, parse_name
from .segmenter import Change, Segmenter, SegmenterStats
from .signal import ChangeSignal

__all__ = [
    "MASTER_PLAYLIST",
    "MEDIA_PLAYLIST",
    "BadDirective",
    "BlockingReload",
    "Change",
    "ChangeSignal",
    "Decision",
    "Directives",
    "Edge",
    "Outcome",
    "PartBuffer",
    "Resource",
    "ResourceKind",
    "Segmenter",
    "SegmenterStats",
    "parse_directives",
    "parse_name",
]
