"""File names of one stream's HLS resources, and parsing them back for the HTTP layer.

Playlists refer to resources by these relative names (plus an optional query suffix,
e.g. a viewer token); the HTTP handler maps a requested name back to what to serve with
``parse_name`` so naming lives in one place.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

MASTER_PLAYLIST = "master.m3u8"
MEDIA_PLAYLIST = "media.m3u8"

_PATTERN = re.compile(
    r"^(?:seg(?P<seg>\d{1,12})\.(?P<ext>m4s|ts)"
    r"|part(?P<pmsn>\d{1,12})\.(?P<part>\d{1,6})\.m4s"
    r"|init(?P<init>\d{1,12})\.mp4)$",
    re.ASCII,  # \d would match any Unicode digit: "seg" + U+0661 must not name segment 1
)


class ResourceKind(enum.Enum):
    """What a name refers to."""

    MASTER = "master"
    MEDIA = "media"
    INIT = "init"
    SEGMENT = "segment"
    PART = "part"


@dataclass(frozen=True, slots=True)
class Resource:
    """A parsed name: ``number`` is the MSN (segment, part) or the init version."""

    kind: ResourceKind
    number: int = 0
    part: int = 0
    extension: str = ""


def init_name(version: int) -> str:
    """Init segment of one track configuration (a new one after a codec change)."""
    return f"init{version}.mp4"


def segment_name(msn: int, extension: str) -> str:
    """Media segment ``msn``; ``extension`` is "m4s" (fMP4) or "ts"."""
    return f"seg{msn}.{extension}"


def part_name(msn: int, index: int) -> str:
    """LL-HLS part ``index`` of segment ``msn`` (fMP4 only)."""
    return f"part{msn}.{index}.m4s"


def parse_name(name: str) -> Resource | None:
    """The resource a request path's last component names, or None (-> 404)."""
    if name == MASTER_PLAYLIST:
        return Resource(ResourceKind.MASTER)
    if name == MEDIA_PLAYLIST:
        return Resource(ResourceKind.MEDIA)
    match = _PATTERN.match(name)
    if match is None:
        return None
    if match["seg"] is not None:
        return Resource(ResourceKind.SEGMENT, int(match["seg"]), extension=match["ext"])
    if match["pmsn"] is not None:
        return Resource(ResourceKind.PART, int(match["pmsn"]), int(match["part"]), "m4s")
    return Resource(ResourceKind.INIT, int(match["init"]), extension="mp4")
