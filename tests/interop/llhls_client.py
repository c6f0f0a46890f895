"""A small LL-HLS client: follows a live media playlist part by part, the way an LL-HLS
player does, and records everything a test needs to judge the origin.

Debian's ffmpeg ignores ``EXT-X-PART`` (protocols.md 6.4), so LL behaviour is checked
with this client: it asks for the next part with a blocking reload
(``_HLS_msn``/``_HLS_part``, plus ``_HLS_skip=YES`` when the playlist advertises
``CAN-SKIP-UNTIL``), fetches every part it has not fetched yet, in order, and notes
gaps, duplicates and how far the live edge had moved when each held reload returned.
Part numbers come from the playlist's structure (media sequence, skipped segments,
position of each ``EXT-X-PART``), never from the URI, so a numbering error shows up.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field

import aiohttp

_ATTR = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')

Key = tuple[int, int]
"""(media sequence number, part index)."""


def _attrs(line: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in _ATTR.findall(line.split(":", 1)[1])}


@dataclass(frozen=True, slots=True)
class PartRef:
    msn: int
    index: int
    uri: str
    duration: float
    independent: bool

    @property
    def key(self) -> Key:
        return (self.msn, self.index)


@dataclass(slots=True)
class SegmentRef:
    msn: int
    parts: list[PartRef]
    duration: float | None = None  # None: still being written
    uri: str = ""


@dataclass(slots=True)
class MediaPlaylist:
    media_sequence: int = 0
    skipped: int = 0
    part_target: float | None = None
    can_skip: bool = False
    can_block: bool = False
    init_uri: str | None = None
    preload_hint: str | None = None
    ended: bool = False
    segments: list[SegmentRef] = field(default_factory=list)

    @property
    def parts(self) -> list[PartRef]:
        return [p for s in self.segments for p in s.parts]

    def closed_parts(self, msn: int) -> int | None:
        """How many parts segment ``msn`` ended with (None: not closed or not listed)."""
        for segment in self.segments:
            if segment.msn == msn and segment.duration is not None and segment.parts:
                return len(segment.parts)
        return None

    def normalise(self, key: Key) -> Key:
        """A part index past the last part of a closed segment means part 0 of the next."""
        count = self.closed_parts(key[0])
        return (key[0] + 1, 0) if count is not None and key[1] >= count else key


def parse_media(text: str) -> MediaPlaylist:
    """The parts of an LL-HLS media playlist (full or delta update), numbered by position."""
    playlist = MediaPlaylist()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != "#EXTM3U":
        raise ValueError(f"not a playlist: {text[:80]!r}")
    pending: list[PartRef] = []
    msn = 0
    duration: float | None = None
    for line in lines[1:]:
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            playlist.media_sequence = msn = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-SKIP:"):
            playlist.skipped = int(_attrs(line)["SKIPPED-SEGMENTS"])
            msn = playlist.media_sequence + playlist.skipped
        elif line.startswith("#EXT-X-SERVER-CONTROL:"):
            attrs = _attrs(line)
            playlist.can_block = attrs.get("CAN-BLOCK-RELOAD") == "YES"
            playlist.can_skip = "CAN-SKIP-UNTIL" in attrs
        elif line.startswith("#EXT-X-PART-INF:"):
            playlist.part_target = float(_attrs(line)["PART-TARGET"])
        elif line.startswith("#EXT-X-MAP:") and playlist.init_uri is None:
            playlist.init_uri = _attrs(line)["URI"]
        elif line.startswith("#EXT-X-PART:"):
            attrs = _attrs(line)
            independent = attrs.get("INDEPENDENT") == "YES"
            pending.append(
                PartRef(msn, len(pending), attrs["URI"], float(attrs["DURATION"]), independent)
            )
        elif line.startswith("#EXTINF:"):
            duration = float(line.split(":", 1)[1].split(",", 1)[0])
        elif line.startswith("#EXT-X-PRELOAD-HINT:"):
            playlist.preload_hint = _attrs(line)["URI"]
        elif line == "#EXT-X-ENDLIST":
            playlist.ended = True
        elif not line.startswith("#"):
            playlist.segments.append(SegmentRef(msn, pending, duration, line))
            msn, pending, duration = msn + 1, [], None
    if pending:
        playlist.segments.append(SegmentRef(msn, pending))
    return playlist


@dataclass(frozen=True, slots=True)
class Reload:
    """One held playlist request: what was asked, what the answer's edge was."""

    asked: Key
    answered_last: Key | None
    skipped: int
    seconds: float
    status: int

    def lag(self, playlist: MediaPlaylist) -> int | None:
        """Parts the edge had moved past the asked-for part when the answer was made
        (0 = answered as soon as that part existed); None if the part is missing."""
        asked = playlist.normalise(self.asked)
        keys = [p.key for p in playlist.parts]
        if asked not in keys:
            return None
        return len(keys) - 1 - keys.index(asked)


@dataclass
class Follower:
    """Follows ``media_url`` for a while; see the module docstring."""

    http: aiohttp.ClientSession
    media_url: str
    init: bytes = b""
    parts: list[tuple[PartRef, bytes]] = field(default_factory=list)
    fetch_counts: dict[str, int] = field(default_factory=dict)
    reloads: list[tuple[Reload, MediaPlaylist]] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    segments_closed: dict[int, int] = field(default_factory=dict)  # msn -> part count
    segment_uris: dict[int, str] = field(default_factory=dict)

    def _url(self, name: str) -> str:
        return self.media_url.rsplit("/", 1)[0] + "/" + name

    async def _get(self, url: str) -> tuple[int, bytes]:
        async with self.http.get(url, timeout=aiohttp.ClientTimeout(total=30)) as resp:
            return resp.status, await resp.read()

    async def _fetch(self, name: str) -> bytes:
        self.fetch_counts[name] = self.fetch_counts.get(name, 0) + 1
        status, body = await self._get(self._url(name))
        if status != 200:
            self.errors.append(f"GET {name} -> {status}")
        return body

    async def follow(self, seconds: float) -> None:
        """Join at the newest independent part, then follow part by part."""
        status, body = await self._get(self.media_url)
        if status != 200:
            raise AssertionError(f"media playlist -> {status}")
        playlist = parse_media(body.decode())
        if playlist.part_target is None or not playlist.can_block or playlist.init_uri is None:
            raise AssertionError(f"not an LL-HLS fMP4 playlist:\n{body.decode()}")
        self.init = await self._fetch(playlist.init_uri)
        starts = [p for p in playlist.parts if p.independent]
        if not starts:
            raise AssertionError(f"no independent part to join at:\n{body.decode()}")
        cursor = await self._take(playlist, None, starts[-1].key)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not playlist.ended:
            asked = (cursor[0], cursor[1] + 1)
            query = f"?_HLS_msn={asked[0]}&_HLS_part={asked[1]}"
            query += "&_HLS_skip=YES" if playlist.can_skip else ""
            started = time.monotonic()
            status, body = await self._get(self.media_url + query)
            elapsed = time.monotonic() - started
            if status != 200:
                self.errors.append(f"reload {query} -> {status}: {body[:200]!r}")
                await asyncio.sleep(0.1)
                continue
            playlist = parse_media(body.decode())
            last = playlist.parts[-1].key if playlist.parts else None
            self.reloads.append((Reload(asked, last, playlist.skipped, elapsed, status), playlist))
            cursor = await self._take(playlist, cursor, None)

    async def _take(self, playlist: MediaPlaylist, cursor: Key | None, first: Key | None) -> Key:
        """Fetch the listed parts after ``cursor`` (or from ``first``), in order, noting a
        gap whenever the next one is not the successor of the previous one."""
        for segment in playlist.segments:
            if segment.duration is not None and segment.parts:
                self.segments_closed[segment.msn] = len(segment.parts)
                self.segment_uris[segment.msn] = segment.uri
        for part in playlist.parts:
            if first is not None and part.key < first:
                continue
            if cursor is not None and part.key <= cursor:
                continue
            if cursor is not None and part.key not in self._successors(cursor):
                self.gaps.append(f"after {cursor} came {part.key}")
            self.parts.append((part, await self._fetch(part.uri)))
            cursor = part.key
        if cursor is None:
            raise AssertionError("the playlist listed no part to start from")
        return cursor

    def _successors(self, key: Key) -> set[Key]:
        msn, index = key
        closed = self.segments_closed.get(msn)
        if closed is None:
            return {(msn, index + 1)}
        return {(msn + 1, 0)} if index + 1 == closed else {(msn, index + 1)}

    @property
    def duplicates(self) -> list[str]:
        return [name for name, count in self.fetch_counts.items() if count > 1]

    def stream_bytes(self) -> bytes:
        """Init segment and every part fetched, in order: one continuous fMP4 stream."""
        return self.init + b"".join(data for _, data in self.parts)

    def complete_segments(self) -> dict[int, bytes]:
        """For every closed segment all of whose parts were fetched: the parts joined."""
        by_msn: dict[int, list[tuple[int, bytes]]] = {}
        for part, data in self.parts:
            by_msn.setdefault(part.msn, []).append((part.index, data))
        return {
            msn: b"".join(d for _, d in sorted(chunks))
            for msn, chunks in by_msn.items()
            if self.segments_closed.get(msn) == len(chunks) and chunks[0][0] == 0
        }
