"""Just enough LL-HLS media-playlist parsing for the HLS benchmarks' clients.

Parts are numbered by their position (media sequence, skipped segments, order), and a
segment's ``program_date_time`` is kept so a part's media time can be computed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

_ATTR = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


def _attrs(line: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in _ATTR.findall(line.split(":", 1)[1])}


@dataclass(frozen=True, slots=True)
class PartInfo:
    msn: int
    index: int
    uri: str
    duration: float
    independent: bool


@dataclass(slots=True)
class SegmentInfo:
    msn: int
    program_date_time: float | None
    parts: list[PartInfo] = field(default_factory=list)
    duration: float | None = None  # None while being written


def parse_segments(text: str) -> list[SegmentInfo]:
    """The playlist's segments (the open one last), with their listed parts."""
    segments: list[SegmentInfo] = []
    msn = 0
    current: SegmentInfo | None = None
    duration: float | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            msn = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-SKIP:"):
            msn += int(_attrs(line)["SKIPPED-SEGMENTS"])
        elif line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            stamp = line.split(":", 1)[1].replace("Z", "+00:00")
            current = current or SegmentInfo(msn, None)
            current.program_date_time = datetime.fromisoformat(stamp).timestamp()
        elif line.startswith("#EXT-X-PART:"):
            attrs = _attrs(line)
            current = current or SegmentInfo(msn, None)
            current.parts.append(
                PartInfo(
                    msn,
                    len(current.parts),
                    attrs["URI"],
                    float(attrs["DURATION"]),
                    attrs.get("INDEPENDENT") == "YES",
                )
            )
        elif line.startswith("#EXTINF:"):
            duration = float(line.split(":", 1)[1].split(",", 1)[0])
        elif line and not line.startswith("#"):
            current = current or SegmentInfo(msn, None)
            current.duration = duration
            segments.append(current)
            msn, current, duration = msn + 1, None, None
    if current is not None and current.parts:
        segments.append(current)
    return segments


def parse_parts(text: str) -> list[PartInfo]:
    return [p for s in parse_segments(text) for p in s.parts]


def next_request(text: str, parts: list[PartInfo]) -> str:
    """The blocking-reload query for the part after the last listed one (a plain reload
    when the playlist has no parts), with ``_HLS_skip=YES`` when delta updates exist."""
    if not parts:
        return ""
    last = parts[-1]
    skip = "&_HLS_skip=YES" if "CAN-SKIP-UNTIL=" in text else ""
    return f"?_HLS_msn={last.msn}&_HLS_part={last.index + 1}{skip}"
