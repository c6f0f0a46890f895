"""VOD of library files: the catalog interface, worker threads and bounded caches.

The media plane does not know the library's database: the composition root hands it a
``VodCatalog`` that answers "what is this media id" (status, policy, files). Reading a
file (a keyframe scan, a segment) runs in a fixed pool of threads; concurrent requests
for the same thing wait on one read, and what was read is kept in bounded LRU caches.
Library files never change once ready (they are named by id and replaced only by a new
item), so a cache entry keyed by path stays true until evicted.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from server.hls.playlist import (
    MediaView,
    SegmentLine,
    Variant,
    render_master,
    render_media,
    split_for_suffix,
)
from server.media.codec_string import codecs_attribute
from server.media.errors import MediaFormatError
from server.media.frame import TrackKind
from server.settings import VodSettings

from . import source
from .index import target_duration
from .sendfile import SegmentFile
from .source import Layout, UnreadableFile, UnsupportedCodec

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class VodItem:
    """A media item as VOD sees it. ``source`` is the file segments are cut from (the
    faststart MP4 when the library made one), ``mp4`` the file served at ``mp4Url``."""

    media_id: str
    status: str
    private: bool
    source: Path
    mp4: Path | None


class VodCatalog(Protocol):
    async def vod_item(self, media_id: str) -> VodItem | None: ...


@dataclass(frozen=True, slots=True)
class Playlists:
    """Everything about one file that is the same for every viewer, rendered once."""

    layout: Layout
    master: tuple[str, ...]  # split for a per-viewer suffix (server.hls.playlist)
    media: tuple[str, ...]
    init: bytes


class _Lru:
    """LRU map bounded by a total weight (bytes, or 1 per entry) and a number of entries."""

    def __init__(self, capacity: int, max_items: int | None = None) -> None:
        self.capacity = capacity
        self.max_items = max_items
        self.weight = 0
        self._items: OrderedDict[object, tuple[object, int]] = OrderedDict()

    def get(self, key: object) -> object | None:
        hit = self._items.get(key)
        if hit is None:
            return None
        self._items.move_to_end(key)
        return hit[0]

    def put(self, key: object, value: object, weight: int = 1) -> None:
        if weight > self.capacity:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self.weight -= old[1]
        self._items[key] = (value, weight)
        self.weight += weight
        while self.weight > self.capacity or (
            self.max_items is not None and len(self._items) > self.max_items
        ):
            _, (_, dropped) = self._items.popitem(last=False)
            self.weight -= dropped

    def __len__(self) -> int:
        return len(self._items)


def render(layout: Layout, target: float) -> Playlists:
    """Master and media playlists of a file (``EXT-X-PLAYLIST-TYPE:VOD``, ``ENDLIST``)."""
    spans = layout.spans
    lines = tuple(
        SegmentLine(
            msn=n, duration=s.seconds, discontinuity=False, program_date_time=None, init_version=0
        )
        for n, s in enumerate(spans)
    )
    view = MediaView(
        target_duration=target_duration(spans, target),
        media_sequence=0,
        discontinuity_sequence=0,
        segments=lines,
        low_latency=None,
        preload_hint=None,
        ended=True,
        playlist_type="VOD",
    )
    rates = [
        round(b * 8 / s.seconds)
        for b, s in zip(layout.span_bytes, spans, strict=True)
        if s.seconds > 0
    ]
    total = sum(s.seconds for s in spans)
    video = next((c for c in layout.configs if c.track is TrackKind.VIDEO), None)
    audio = next((c for c in layout.configs if c.track is TrackKind.AUDIO), None)
    variant = Variant(
        bandwidth=max(rates, default=1),
        average_bandwidth=round(sum(layout.span_bytes) * 8 / total) if total else None,
        codecs=codecs_attribute(video, audio),
        resolution=(video.width, video.height) if video and video.width else None,
        frame_rate=video.fps if video else None,
    )
    return Playlists(
        layout,
        split_for_suffix(render_master([variant])),
        split_for_suffix(render_media(view)),
        source.init_segment(layout),
    )


class VodService:
    """One per process: what ``/vod/`` serves, read from files by worker threads."""

    def __init__(
        self,
        settings: VodSettings,
        target_duration: float,
        catalog: VodCatalog,
        playback_key: bytes = b"",
    ) -> None:
        self.settings = settings
        self.target = target_duration
        self.catalog = catalog
        self.playback_key = playback_key  # signs the tokens of private items
        self._pool: ThreadPoolExecutor | None = None
        self._playlists = _Lru(settings.index_cache_items)
        # each cached segment is an open memory file: bounded in bytes and in descriptors
        self._segments = _Lru(settings.segment_cache_bytes, settings.segment_cache_files)
        self._items = _Lru(settings.index_cache_items)
        self._inflight: dict[object, asyncio.Future[Any]] = {}
        self.reads = 0  # file reads done (scans and segments), for tests and metrics
        self.requests: Counter[tuple[str, int]] = Counter()  # (resource kind, status)

    async def item(self, media_id: str) -> VodItem | None:
        """The catalog's answer, remembered for ``lookup_cache_seconds`` so a player's
        burst of segment requests costs one database query. Requests that miss together
        (a cold item, or the answer just expired under 200 viewers) share one query: a
        query each would stall every one of them behind hundreds of database trips."""
        hit = self._items.get(media_id)
        if isinstance(hit, tuple) and hit[0] > time.monotonic():
            cached: VodItem | None = hit[1]
            return cached
        key = ("item", media_id)
        pending = self._inflight.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._ask(media_id))
            self._inflight[key] = pending
            pending.add_done_callback(lambda _: self._inflight.pop(key, None))
        found: VodItem | None = await asyncio.shield(pending)
        return found

    async def _ask(self, media_id: str) -> VodItem | None:
        found = await self.catalog.vod_item(media_id)
        if self.settings.lookup_cache_seconds > 0:
            expires = time.monotonic() + self.settings.lookup_cache_seconds
            self._items.put(media_id, (expires, found))
        return found

    async def playlists(self, item: VodItem) -> Playlists:
        """Raises UnsupportedCodec (remembered, a file does not change) or UnreadableFile."""
        key = ("playlists", str(item.source))

        def build() -> Playlists | UnsupportedCodec:
            try:
                return render(source.scan(item.source, self.target), self.target)
            except UnsupportedCodec as exc:
                return exc
            except MediaFormatError as exc:  # a codec record our writer cannot describe
                raise UnreadableFile(f"its codec configuration is malformed ({exc})") from None

        found = await self._cached(key, self._playlists, build, lambda _: 1)
        if isinstance(found, UnsupportedCodec):
            raise found
        assert isinstance(found, Playlists)
        return found

    async def segment(self, item: VodItem, playlists: Playlists, number: int) -> SegmentFile:
        """Cut once and kept in a memory file, so every viewer is sent it by sendfile."""
        key = ("segment", str(item.source), number)
        layout = playlists.layout

        def cut() -> SegmentFile:
            return SegmentFile(source.segment(item.source, layout, number))

        found = await self._cached(key, self._segments, cut, lambda f: f.size)
        assert isinstance(found, SegmentFile)
        return found

    async def _cached(
        self, key: object, cache: _Lru, read: Callable[[], T], weight: Callable[[T], int]
    ) -> object:
        hit = cache.get(key)
        if hit is not None:
            return hit
        pending = self._inflight.get(key)
        if pending is None:
            pending = self._run(read)
            self._inflight[key] = pending

            def settle(done: asyncio.Future[T]) -> None:
                del self._inflight[key]
                if not done.cancelled() and done.exception() is None:
                    cache.put(key, done.result(), weight(done.result()))

            pending.add_done_callback(settle)
        # shielded: a viewer who hangs up does not cancel the read the others wait for
        return await asyncio.shield(pending)

    def _run(self, read: Callable[[], T]) -> asyncio.Future[T]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.settings.workers, thread_name_prefix="vod")
        self.reads += 1
        return asyncio.get_running_loop().run_in_executor(self._pool, read)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
