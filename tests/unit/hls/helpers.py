"""Feeding a Segmenter, a small media-playlist parser, and the playlist rules checker."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from server.bus.items import BusItem, ConfigChange
from server.hls import Segmenter
from server.media.frame import TIMEBASE, Frame
from server.settings import HlsSettings
from tests.unit.media.avsource import Media

T0 = 1_700_000_000.0
_ATTR = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


def attributes(value: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in _ATTR.findall(value)}


def shifted(frames: Iterable[Frame], ticks: int) -> list[Frame]:
    """The same frames ``ticks`` later (to continue or restart a timeline)."""
    return [dataclasses.replace(f, dts=f.dts + ticks, pts=f.pts + ticks) for f in frames]


def start(media: Media, **settings: object) -> Segmenter:
    """A segmenter that has seen the media's configs."""
    low_latency = settings.pop("low_latency", None)
    seg = Segmenter(HlsSettings(**settings), low_latency=low_latency)  # type: ignore[arg-type]
    for config in media.configs:
        seg.feed(ConfigChange(config), T0)
    return seg


def feed(seg: Segmenter, items: Iterable[BusItem], t0: float = T0) -> list[str]:
    """Feed items at a wall clock following the media; collect every playlist version."""
    seen: list[str] = []
    for item in items:
        now = t0 + (item.dts / TIMEBASE if isinstance(item, Frame) else 0)
        seg.feed(item, now)
        text = seg.media_playlist()
        if text is not None and (not seen or seen[-1] != text):
            seen.append(text)
    return seen


@dataclass
class Part:
    duration: float
    uri: str
    independent: bool


@dataclass
class Segment:
    msn: int
    duration: float | None = None
    uri: str | None = None
    parts: list[Part] = field(default_factory=list)
    discontinuity: bool = False
    date_time: str | None = None
    map_uri: str | None = None


@dataclass
class Playlist:
    tags: dict[str, str]
    segments: list[Segment]
    preload_hint: str | None = None
    ended: bool = False
    skipped: int = 0

    @property
    def media_sequence(self) -> int:
        return int(self.tags["EXT-X-MEDIA-SEQUENCE"])

    @property
    def discontinuity_sequence(self) -> int:
        return int(self.tags.get("EXT-X-DISCONTINUITY-SEQUENCE", "0"))

    @property
    def complete(self) -> list[Segment]:
        return [s for s in self.segments if s.duration is not None]


SEGMENT_TAGS = frozenset(
    {"EXT-X-PART", "EXTINF", "EXT-X-DISCONTINUITY", "EXT-X-MAP", "EXT-X-PROGRAM-DATE-TIME"}
)


def parse(text: str) -> Playlist:
    """Parse a media playlist; segments get their MSN from the media sequence (and skip)."""
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U"
    tags: dict[str, str] = {}
    playlist = Playlist(tags, [])
    current: Segment | None = None
    for line in lines[1:]:
        if not line.startswith("#"):
            assert current is not None and current.duration is not None
            current.uri, current = line, None
            continue
        name, _, value = line[1:].partition(":")
        if name in SEGMENT_TAGS and current is None:
            msn = int(tags["EXT-X-MEDIA-SEQUENCE"]) + playlist.skipped + len(playlist.segments)
            current = Segment(msn)
            playlist.segments.append(current)
        if name == "EXT-X-PART":
            a = attributes(value)
            assert current is not None
            current.parts.append(
                Part(float(a["DURATION"]), a["URI"], a.get("INDEPENDENT") == "YES")
            )
        elif name == "EXTINF":
            assert current is not None
            current.duration = float(value.rstrip(","))
        elif name == "EXT-X-DISCONTINUITY":
            assert current is not None
            current.discontinuity = True
        elif name == "EXT-X-MAP":
            assert current is not None
            current.map_uri = attributes(value)["URI"]
        elif name == "EXT-X-PROGRAM-DATE-TIME":
            assert current is not None
            current.date_time = value
        elif name == "EXT-X-PRELOAD-HINT":
            playlist.preload_hint = attributes(value)["URI"]
        elif name == "EXT-X-ENDLIST":
            playlist.ended = True
        elif name == "EXT-X-SKIP":
            playlist.skipped = int(attributes(value)["SKIPPED-SEGMENTS"])
        else:
            tags[name] = value
    return playlist


EPS = 1e-6


def check_rules(text: str, settings: HlsSettings, cap: float = 1.0) -> Playlist:
    """Assert the RFC 8216bis / issue rules on one media playlist; return it parsed.

    Segments must not exceed the target duration (times ``cap`` where the stream's GOP
    does not fit the target) and EXTINF must round to at most EXT-X-TARGETDURATION."""
    p = parse(text)
    target = int(p.tags["EXT-X-TARGETDURATION"])
    assert target == math.ceil(settings.target_duration)
    for number, segment in enumerate(p.segments, p.media_sequence + p.skipped):
        assert segment.msn == number
        if segment.duration is not None:
            assert segment.duration <= settings.target_duration * cap + EPS, segment
            assert round(segment.duration) <= target
            assert segment.uri is not None and segment.uri.startswith(f"seg{segment.msn}.")
        for index, part in enumerate(segment.parts):
            assert part.uri.startswith(f"part{segment.msn}.{index}.m4s")
    if "EXT-X-PART-INF" in p.tags:
        part_target = float(attributes(p.tags["EXT-X-PART-INF"])["PART-TARGET"])
        control = attributes(p.tags["EXT-X-SERVER-CONTROL"])
        assert control["CAN-BLOCK-RELOAD"] == "YES"
        assert float(control["PART-HOLD-BACK"]) >= 3 * part_target - EPS
        _check_parts(p, part_target)
    return p


def _check_parts(p: Playlist, part_target: float) -> None:
    for segment in p.segments:
        parts = segment.parts
        for index, part in enumerate(parts):
            assert part.duration <= part_target + EPS, (segment.msn, index, part)
            # RFC 8216bis 4.4.4.9: short parts only at a segment's end or where a part is
            # INDEPENDENT (never the part before one: players meet it when they switch)
            if not (index == len(parts) - 1 or part.independent):
                assert part.duration >= 0.85 * part_target - EPS, (segment.msn, index, part)
        if parts and segment.duration is not None:
            assert abs(sum(x.duration for x in parts) - segment.duration) < 0.002 * len(parts)
