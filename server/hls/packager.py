"""One HLS packager per live stream: a bus reader feeding a Segmenter.

It reads the bus like any other reader, so a slow packager loses frames (counted by
the bus) instead of slowing the publisher. After the session ends the packager stays
for a while so players can fetch the ENDLIST playlist and the last segments.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from server.bus import EndOfStream, Stream, StreamGrant
from server.hls.held import HeldReloads
from server.hls.playlist import render_master, split_for_suffix, with_suffix
from server.hls.segmenter import Change, Segmenter
from server.hls.signal import ChangeSignal
from server.hls.stats import HlsStats
from server.settings import HlsSettings
from server.tasks import BackgroundTasks

log = logging.getLogger("relaycast.hls")


@dataclass(frozen=True, slots=True)
class PlaybackInfo:
    """What playback needs to know about a stream, from its persistent configuration."""

    stream_id: str
    edge_id: str
    low_latency: bool
    private: bool = False
    max_clients: int | None = None


VIEWER_WINDOW = 30.0
"""Seconds a viewer counts as watching after its last playlist request."""


class Viewers:
    """Concurrent viewers of one stream, counted by client over a sliding window.

    Players reload the playlist every part or segment, so a viewer that stopped
    fetching for the window has left; memory is bounded by the plan's maxClients.
    ``others`` counts the stream's RTMP and SRT players, which share the plan's limit.
    """

    def __init__(
        self,
        limit: int | None,
        window: float = VIEWER_WINDOW,
        others: Callable[[], int] = lambda: 0,
    ) -> None:
        self.limit = limit
        self.window = window
        self.others = others
        self._seen: dict[str, tuple[float, float]] = {}  # viewer -> (first, last) request
        self.views = 0
        self._left_seconds = 0.0

    def admit(self, viewer: str, now: float) -> bool:
        seen = self._seen.get(viewer)
        if seen is not None:
            self._seen[viewer] = (seen[0], now)
            return True
        self._forget_idle(now)
        if self.limit is not None and len(self._seen) + self.others() >= self.limit:
            return False
        self._seen[viewer] = (now, now)
        self.views += 1
        return True

    def active(self, now: float) -> int:
        """Viewers seen within the window (the metrics gauge; the same count admits)."""
        self._forget_idle(now)
        return len(self._seen)

    def watched_seconds(self, now: float) -> float:
        """Seconds watched: first to last request of each viewer, gone or still here."""
        self._forget_idle(now)
        return self._left_seconds + sum(last - first for first, last in self._seen.values())

    def _forget_idle(self, now: float) -> None:
        """Unlimited streams too: memory must not grow with every client ever seen."""
        for old in [v for v, (_, t) in self._seen.items() if now - t > self.window]:
            first, last = self._seen.pop(old)
            self._left_seconds += last - first

    def __len__(self) -> int:
        return len(self._seen)


class HlsPackager:
    """The packager of a stream's source; with ``leader`` the packager of one of its
    renditions (``name``), whose segments follow the leader's cuts and numbering and
    whose viewers count as the leader's."""

    def __init__(
        self,
        info: PlaybackInfo,
        stream: Stream,
        settings: HlsSettings,
        other_viewers: Callable[[str], int] = lambda edge_id: 0,
        *,
        leader: HlsPackager | None = None,
        name: str = "source",
    ) -> None:
        self.info = info
        self.name = name
        self.leader = leader
        self.viewers: Viewers = (
            leader.viewers
            if leader is not None
            else Viewers(info.max_clients, others=lambda: other_viewers(info.edge_id))
        )
        # Two signals so that held playlist requests wake once per part, not per frame:
        # ``signal`` = the playlists changed; ``data`` = that, or a part being written grew.
        self.signal = ChangeSignal()
        self.data = ChangeSignal()
        # The multivariant playlist changed: a rendition became playable or ended.
        self.ladder = ChangeSignal()
        # Blocking reloads held below aiohttp (server.hls.fast): settled once per change;
        # parts streamed while written there: fed once per data change.
        self.held = HeldReloads()
        self.feeding = HeldReloads()
        self.first_sequence: int = leader.first_sequence if leader is not None else int(time.time())
        self.segmenter: Segmenter = Segmenter(
            settings,
            low_latency=info.low_latency,
            on_change=self._changed,
            first_sequence=self.first_sequence,
            streaming=lambda: self.streaming > 0,
            leader=leader.segmenter if leader is not None else None,
        )
        self.streaming: int = 0  # responses sending a part while it is written (chunked)
        self.stream = stream
        self._reader = stream.reader("hls" if leader is None else f"hls:{name}", "hls")
        self.ended_at: float | None = None
        # Renditions by name, in ladder order, and the names the master waits for.
        self.renditions: dict[str, HlsPackager] = {}
        self.expected: tuple[str, ...] = ()
        self._playable = False

    async def run(self) -> None:
        try:
            while True:
                item = await self._reader.next()
                self.segmenter.feed(item, time.time())
                if isinstance(item, EndOfStream):
                    break
        finally:
            self._reader.close()
            if not self.segmenter.ended:
                self.segmenter.on_end()
            self.ended_at = time.monotonic()
            self.signal.notify()
            self.held.changed()
            self.data.notify()
            self.feeding.changed()

    def _changed(self, change: Change) -> None:
        self.data.notify()
        self.feeding.changed()
        if change is Change.PLAYLIST:
            self.signal.notify()
            self.held.changed()
            playable = self.segmenter.has_segment and not self.segmenter.ended
            if self.leader is not None and playable != self._playable:
                self._playable = playable
                self.leader.ladder.notify()

    def playable_renditions(self) -> list[HlsPackager]:
        """Renditions a player can switch to now: a complete segment, not ended."""
        return [
            r for r in self.renditions.values() if r.segmenter.has_segment and not r.segmenter.ended
        ]

    def ladder_ready(self) -> bool:
        """Every expected rendition is playable (the master waits for them, bounded)."""
        ready = {r.name for r in self.playable_renditions()}
        return all(name in ready for name in self.expected)

    def master_playlist(self, suffix: str = "") -> str | None:
        """The multivariant playlist: the source, then each playable rendition."""
        source = self.segmenter.variant()
        if source is None:
            return None
        variants = [source]
        for rendition in self.playable_renditions():
            variant = rendition.segmenter.variant(f"{rendition.name}/")
            if variant is not None:
                variants.append(variant)
        return with_suffix(split_for_suffix(render_master(variants)), suffix)

    @property
    def dropped_frames(self) -> int:
        return self._reader.dropped_frames


class HlsService:
    """Packagers by edge id, started when a session opens and kept for a while after."""

    def __init__(
        self,
        settings: HlsSettings,
        clock: Callable[[], float] = time.monotonic,
        playback_key: bytes = b"",
    ) -> None:
        self.settings = settings
        self.playback_key = playback_key  # signs tokens of private streams
        # RTMP and SRT players of an edge id: they share the plan's maxClients with HLS.
        self.other_viewers: Callable[[str], int] = lambda edge_id: 0
        self.stats = HlsStats()
        self.clock = clock
        self._by_edge: dict[str, HlsPackager] = {}
        self._by_stream: dict[str, HlsPackager] = {}
        self._tasks = BackgroundTasks(log, "hls packager failed")
        # Ended playlists stay fetchable for the window plus the spec's retention.
        self.linger = 2 * settings.window_segments * settings.target_duration + 10

    def stream_opened(self, grant: StreamGrant, stream: Stream, session_id: str) -> None:
        """``StreamObserver``: every new session gets its packager."""
        info = PlaybackInfo(
            grant.stream_id, grant.edge_id, grant.low_latency, grant.private, grant.max_clients
        )
        self.start(info, stream)

    def start(self, info: PlaybackInfo, stream: Stream) -> HlsPackager:
        packager = HlsPackager(info, stream, self.settings, self.other_viewers)
        self._by_edge[info.edge_id] = packager
        self._by_stream[info.stream_id] = packager
        self._tasks.spawn(packager.run())
        self._sweep()
        return packager

    # ------------------------------------------------------------ renditions (transcode)

    def renditions_planned(self, stream_id: str, names: tuple[str, ...]) -> None:
        """The stream will have these renditions: its master waits (bounded) for them."""
        packager = self._by_stream.get(stream_id)
        if packager is not None:
            packager.expected = names
            packager.ladder.notify()

    def rendition_opened(self, stream_id: str, name: str, stream: Stream) -> None:
        """A rendition's bus stream (new, or anew after its worker restarted) is packaged
        like the source, following the source's segments."""
        leader = self._by_stream.get(stream_id)
        if leader is None or leader.ended_at is not None:
            return
        packager = HlsPackager(leader.info, stream, self.settings, leader=leader, name=name)
        leader.renditions[name] = packager
        self._tasks.spawn(packager.run())

    def rendition_dropped(self, stream_id: str, name: str) -> None:
        """The stream fell back to passthrough: the rendition leaves the master."""
        leader = self._by_stream.get(stream_id)
        if leader is not None:
            leader.expected = tuple(n for n in leader.expected if n != name)
            leader.renditions.pop(name, None)
            leader.ladder.notify()

    def live_segmenter(self, stream_id: str, stream: Stream) -> Segmenter | None:
        """The segmenter packaging ``stream`` (this session's bus stream) while it is
        live, for the recorder to copy; None without one."""
        packager = self._by_stream.get(stream_id)
        if packager is None or packager.stream is not stream or packager.segmenter.ended:
            return None
        return packager.segmenter

    def get(self, edge_id: str) -> HlsPackager | None:
        packager = self._by_edge.get(edge_id)
        if packager is not None and self._expired(packager):
            del self._by_edge[edge_id]
            return None
        return packager

    def packagers(self) -> list[HlsPackager]:
        """The packagers still serving (live or lingering after their session ended)."""
        self._sweep()
        return list(self._by_edge.values())

    def _expired(self, packager: HlsPackager) -> bool:
        ended = packager.ended_at
        return ended is not None and self.clock() - ended > self.linger

    def _sweep(self) -> None:
        for edge, packager in list(self._by_edge.items()):
            if self._expired(packager):
                del self._by_edge[edge]
                if self._by_stream.get(packager.info.stream_id) is packager:
                    del self._by_stream[packager.info.stream_id]

    async def close(self) -> None:
        await self._tasks.close()
