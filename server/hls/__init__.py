"""HLS / LL-HLS packaging of live streams: pure segmenter, playlists, blocking reload.

The bus-reading task and the HTTP handlers (not here yet) are thin: they feed bus items
into a ``Segmenter`` and serve what it exposes.
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
