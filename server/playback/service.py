"""Admission of RTMP and SRT players: which live stream an edge id names, whether
this player may watch it, and the bus reader it watches through.

A ``StreamObserver`` like the HLS service: every session that opens is playable by
its edge id until its bus ends. Refusals go through the ingest refusal reporter (counted,
sampled log, ``/v1/ingest/failures``) with the reason, so an operator sees players
and encoders refused in one place.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from server.bus import Reader, Stream, StreamGrant
from server.hls import tokens
from server.hls.packager import HlsService
from server.ingest.refusals import RefusalReason, RefusalReporter
from server.settings import PlaybackSettings
from server.tasks import BackgroundTasks
from server.timers import run_batches

from .fanout import FanoutPlayer, RtmpFanout
from .relay import PlayerRelays
from .viewers import HlsAudience, RelayedAudience, Viewership, ViewershipStats

log = logging.getLogger("relaycast.playback")

SESSION_CHECK = 1.0
"""Seconds between checks that a session has ended (then its audience is saved)."""
PLAYERS_GONE = 5.0
"""Seconds after a session's end to wait for its players to leave before saving."""


class ViewershipSink(Protocol):
    """Where a finished session's audience goes (the control plane's session row)."""

    async def session_viewers(self, session_id: str, stats: ViewershipStats) -> None: ...


TS_CODECS = frozenset({"h264", "h265", "aac"})
"""What ``server.media.mpegts.TsMuxer`` carries, so what SRT players can be sent."""
ENHANCED_CODECS = frozenset({"h265", "av1", "vp9", "opus"})
"""Codecs only Enhanced RTMP carries: a player must list FourCCs in connect."""


class PlayRefused(Exception):
    """Why a player may not watch; ``reason`` is the refusal's machine-readable kind."""

    def __init__(
        self, reason: RefusalReason, message: str, grant: StreamGrant | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.grant = grant  # set when the refusal is about a known stream


@dataclass(slots=True)
class _Live:
    grant: StreamGrant
    stream: Stream
    session_id: str
    viewership: Viewership
    relayed: bool = False  # fed from the node carrying it (``server.playback.relay``)
    # the owner: players other nodes relay it to, by relay; a relaying node: the
    # viewers the owner and the other nodes have (both for the plan's maxClients)
    remote: dict[str, int] = field(default_factory=dict)
    elsewhere: int = 0
    # RTMP players by (chunk size, message stream id): one fanout each
    fanouts: dict[tuple[int, int], RtmpFanout] = field(default_factory=dict)


@dataclass(slots=True)
class PlayTicket:
    """One admitted player: its own reader (SRT; an RTMP player's stream fanout reads
    for it), and the handle that ends its count."""

    grant: StreamGrant
    stream: Stream
    reader: Reader | None
    _live: _Live
    _handle: int
    _clock: Callable[[], float]

    def own_reader(self) -> Reader:
        if self.reader is None:
            raise RuntimeError("this player was admitted without a reader of its own")
        return self.reader

    def close(self) -> None:
        """Idempotent: the player left (closes the reader, stops the count)."""
        if self.reader is not None:
            self.reader.close()
        self._live.viewership.closed(self._handle, self._clock())

    def withdraw(self) -> None:
        """The player was refused after admission (SRT passphrase): not a view."""
        if self.reader is not None:
            self.reader.close()
        self._live.viewership.withdrawn(self._handle)


class PlaybackService:
    """Live streams by edge id, their viewers, and the admission of players."""

    def __init__(
        self,
        hls: HlsService,
        settings: PlaybackSettings,
        refusals: RefusalReporter,
        playback_key: bytes = b"",
        clock: Callable[[], float] = time.monotonic,
        session_check: float = SESSION_CHECK,
    ) -> None:
        self.hls = hls
        self.settings = settings
        self.playback_key = playback_key
        self.refusals = refusals  # the ingest manager's: counted, logged, listed alike
        self.clock = clock
        self.session_check = session_check
        self.sink: ViewershipSink | None = None  # set by the composition root
        self.relays: PlayerRelays | None = None  # set on a shared database
        self._by_edge: dict[str, _Live] = {}
        # stream id -> its latest session here: live, or its final figures once ended
        # (never the ended bus itself, which would keep its GOP cache alive)
        self._latest: dict[str, _Live | ViewershipStats] = {}
        self._tasks = BackgroundTasks(log, "saving a session's viewers failed")
        self._fanouts = BackgroundTasks(log, "feeding RTMP players failed")
        hls.other_viewers = self.counted

    # ------------------------------------------------------------ StreamObserver

    def stream_opened(self, grant: StreamGrant, stream: Stream, session_id: str) -> None:
        """Every new session is playable by its edge id (and counted afresh)."""
        live = _Live(grant, stream, session_id, Viewership())
        self._by_edge[grant.edge_id] = live
        self._latest[grant.stream_id] = live
        self._tasks.spawn(self._watch(live), name=f"viewers {session_id}")

    async def _watch(self, live: _Live) -> None:
        """Once the session ends and its players have left, save its audience."""
        left_at: float | None = None
        while True:
            await asyncio.sleep(self.session_check if left_at is None else 0.1)
            if not live.stream.ended:
                continue
            left_at = left_at if left_at is not None else self.clock()
            if not live.viewership.players() or self.clock() - left_at >= PLAYERS_GONE:
                break
        hls = self._hls(live.grant.edge_id)
        stats = live.viewership.snapshot(self.clock(), HlsAudience(0, hls.views, hls.seconds))
        if self._by_edge.get(live.grant.edge_id) is live:
            del self._by_edge[live.grant.edge_id]
        if self._latest.get(live.grant.stream_id) is live:
            self._latest[live.grant.stream_id] = dataclasses.replace(stats, rtmp=0, srt=0, webrtc=0)
        if self.sink is not None:
            await self.sink.session_viewers(live.session_id, stats)

    # ------------------------------------------------------------ relays

    def needs_relay(self, edge_id: str) -> bool:
        """Not live here: an RTMP player of it waits for ``relays.attach`` first."""
        live = self._by_edge.get(edge_id)
        return self.relays is not None and (live is None or live.stream.ended)

    def relay_opened(self, grant: StreamGrant, stream: Stream) -> None:
        """Playable here by its edge id, counted here, never saved (the owner keeps the
        session, and counts these players in its figures from this node's reports)."""
        self._by_edge[grant.edge_id] = _Live(grant, stream, "", Viewership(), relayed=True)

    def relay_closed(self, edge_id: str, stream: Stream) -> None:
        live = self._by_edge.get(edge_id)
        if live is not None and live.stream is stream:
            del self._by_edge[edge_id]

    def relayable(self, edge_id: str) -> tuple[StreamGrant, Stream] | None:
        live = self._by_edge.get(edge_id)
        if live is None or live.relayed or live.stream.ended:
            return None
        return live.grant, live.stream

    def relay_reader_limits(self) -> tuple[int, int]:
        return self.settings.queue_max_frames, self.settings.queue_max_bytes

    async def close(self) -> None:
        if self.relays is not None:
            await self.relays.close()
        await self._fanouts.close()
        await self._tasks.close()

    # ------------------------------------------------------------ counts

    def players(self, edge_id: str) -> int:
        """Open RTMP, SRT and WebRTC players of a live edge (HLS shares maxClients with them)."""
        live = self._by_edge.get(edge_id)
        return live.viewership.players() if live is not None else 0

    def counted(self, edge_id: str) -> int:
        """The players a plan's maxClients counts besides this node's HLS viewers:
        this node's, and those other nodes relay the stream to (or the owner's)."""
        live = self._by_edge.get(edge_id)
        if live is None:
            return 0
        return live.viewership.players() + sum(live.remote.values()) + live.elsewhere

    def audience(self, edge_id: str, relay: str) -> int | None:
        """Viewers of a stream carried here, but for those of one relay (what that
        relay's node adds to its own for maxClients); None when it is not relayed."""
        live = self._by_edge.get(edge_id)
        if live is None or relay not in live.remote:
            return None
        return self._hls(edge_id).current + self.counted(edge_id) - live.remote[relay]

    def relay_players(
        self,
        edge_id: str,
        relay: str,
        players: int | None,
        *,
        start: bool = False,
        audience: RelayedAudience | None = None,
    ) -> bool:
        """A relay of this node's stream started, reported its players (``audience``:
        by protocol, with its views, for the session's figures), or ended (None);
        False when there is no such stream or relay."""
        live = self._by_edge.get(edge_id)
        if live is None or live.relayed or not (start or relay in live.remote):
            return False
        if players is None:
            live.remote.pop(relay, None)
        else:
            live.remote[relay] = players
        if players is None or audience is not None:
            hls = self._hls(edge_id).current
            live.viewership.relayed(relay, audience, self.clock(), hls)
        return True

    def relayed_audience(self, edge_id: str) -> RelayedAudience:
        """This node's players of a stream it relays, for the node carrying it."""
        live = self._by_edge.get(edge_id)
        if live is None:
            return RelayedAudience()
        v = live.viewership
        return RelayedAudience(v.players("rtmp"), v.players("srt"), v.players("webrtc"), v.views)

    def relay_elsewhere(self, edge_id: str, stream: Stream, viewers: int) -> None:
        live = self._by_edge.get(edge_id)
        if live is not None and live.stream is stream:
            live.elsewhere = viewers

    def _hls(self, edge_id: str) -> HlsAudience:
        packager = self.hls.get(edge_id)
        if packager is None:
            return HlsAudience()
        now = time.monotonic()  # the clock the HLS handlers count by
        viewers = packager.viewers
        return HlsAudience(viewers.active(now), viewers.views, viewers.watched_seconds(now))

    def viewership(self, stream_id: str) -> ViewershipStats | None:
        """The latest session's viewers of a stream (zero current ones once it ended),
        or None when it has not been live in this process."""
        live = self._latest.get(stream_id)
        if live is None or isinstance(live, ViewershipStats):
            return live
        hls = self._hls(live.grant.edge_id)
        if live.stream.ended:
            hls = HlsAudience(0, hls.views, hls.seconds)
        return live.viewership.snapshot(self.clock(), hls)

    def live_viewership(self, session_id: str) -> ViewershipStats | None:
        """A session still live here (its figures are saved when it ends)."""
        for live in self._by_edge.values():
            if live.session_id == session_id:
                return live.viewership.snapshot(self.clock(), self._hls(live.grant.edge_id))
        return None

    def snapshots(self) -> list[tuple[StreamGrant, ViewershipStats]]:
        """Live streams with their viewers (the metrics gauges)."""
        return [
            (live.grant, live.viewership.snapshot(self.clock(), self._hls(edge)))
            for edge, live in self._by_edge.items()
            if not live.stream.ended
        ]

    # ------------------------------------------------------------ admission

    def open(
        self,
        protocol: str,
        edge_id: str,
        token: str,
        remote: str,
        *,
        enhanced_rtmp: bool = True,
        with_reader: bool = True,
    ) -> PlayTicket:
        """Admit a player of ``edge_id`` or raise :class:`PlayRefused` (counted, reported).
        ``enhanced_rtmp``: False for an RTMP player that listed no FourCCs in connect,
        which cannot be sent HEVC, AV1 or VP9. ``with_reader``: False for an RTMP player,
        which :meth:`join_rtmp` then feeds from its stream's fanout."""
        try:
            return self._admit(protocol, edge_id, token, enhanced_rtmp, with_reader)
        except PlayRefused as refused:
            self._report(protocol, remote, edge_id, refused)
            raise

    def _admit(
        self, protocol: str, edge_id: str, token: str, enhanced: bool, with_reader: bool
    ) -> PlayTicket:
        live = self._by_edge.get(edge_id)
        if live is None or live.stream.ended:
            raise PlayRefused(RefusalReason.NOT_LIVE, "no live stream by that name")
        grant = live.grant
        if grant.private and not self._token_ok(edge_id, token):
            raise PlayRefused(
                RefusalReason.PLAYBACK_TOKEN,
                "this stream is private: a valid token is needed",
                grant,
            )
        if not enhanced:
            for config in (live.stream.video_config, live.stream.audio_config):
                if config is not None and config.codec in ENHANCED_CODECS:
                    raise PlayRefused(
                        RefusalReason.CODEC_UNSUPPORTED,
                        f"this stream is {config.codec}: it needs an Enhanced RTMP player",
                        grant,
                    )
        if protocol == "srt":
            self._check_ts(live.stream, grant)
        elif protocol == "webrtc":
            self._check_webrtc(live.stream, grant)
        hls = self._hls(edge_id).current
        limit = grant.max_clients
        if limit is not None and hls + self.counted(edge_id) >= limit:
            raise PlayRefused(
                RefusalReason.MAX_CLIENTS,
                "this stream has reached its plan's maximum of viewers",
                grant,
            )
        reader = self._reader(live.stream, protocol) if with_reader else None
        handle = live.viewership.opened(protocol, self.clock(), hls)
        return PlayTicket(grant, live.stream, reader, live, handle, self.clock)

    def _reader(self, stream: Stream, protocol: str) -> Reader:
        settings = self.settings
        return stream.reader(
            f"play:{protocol}",
            "play",
            max_frames=settings.queue_max_frames,
            max_bytes=settings.queue_max_bytes,
        )

    # ------------------------------------------------------------ RTMP fanouts

    def join_rtmp(
        self, ticket: PlayTicket, player: FanoutPlayer, chunk_size: int, stream_id: int
    ) -> RtmpFanout:
        """Feed an admitted RTMP player from its stream's fanout (started on demand);
        hand the result to :meth:`leave_rtmp` when the player goes."""
        live, key = ticket._live, (chunk_size, stream_id)
        fanout = live.fanouts.get(key)
        if fanout is None or fanout.ended:
            settings = self.settings
            reader = self._reader(live.stream, "rtmp")
            fanout = RtmpFanout(
                reader, chunk_size, stream_id, settings.stall_timeout, settings.queue_max_bytes
            )
            live.fanouts[key] = fanout
            name = f"rtmp players {live.session_id}"
            self._fanouts.spawn(self._feed(live, key, fanout), name=name)
        fanout.add(player)
        return fanout

    @staticmethod
    def leave_rtmp(fanout: RtmpFanout, player: FanoutPlayer) -> None:
        """Idempotent: the player's connection is gone (the fanout stops once empty)."""
        fanout.remove(player)

    async def _feed(self, live: _Live, key: tuple[int, int], fanout: RtmpFanout) -> None:
        """One send per ``batch_interval`` for all the stream's players, at the first
        publish after it is due: woken by the publisher, so the send shares the loop
        turn of the ingest read (a timer of its own cost an extra wake-up of the
        process per batch). Without publishes, it still runs within an interval past
        due (what is queued goes out, stuck players are let go, joiners start)."""
        try:
            await run_batches(
                fanout.reader, self.settings.batch_interval, fanout.tick, lambda: fanout.empty
            )
        except Exception:  # our bug or a codec FLV cannot carry: these players only
            log.exception("rtmp players of %s: playback failed", live.grant.stream_id)
            fanout.fail("playback failed")
        finally:
            fanout.close()
            if live.fanouts.get(key) is fanout:
                del live.fanouts[key]

    @staticmethod
    def _check_ts(stream: Stream, grant: StreamGrant) -> None:
        """SRT players get MPEG-TS: refuse what our muxer does not carry (AV1, VP9, Opus)."""
        for config in (stream.video_config, stream.audio_config):
            if config is not None and config.codec not in TS_CODECS:
                message = f"this stream is {config.codec}, which MPEG-TS output does not carry"
                raise PlayRefused(RefusalReason.CODEC_UNSUPPORTED, message, grant)

    @staticmethod
    def _check_webrtc(stream: Stream, grant: StreamGrant) -> None:
        """WHEP sends the bus's video as it is: H.264 only (what browsers all decode)."""
        config = stream.video_config
        if config is not None and config.codec != "h264":
            message = f"this stream is {config.codec}; WebRTC playback sends H.264 only"
            raise PlayRefused(RefusalReason.CODEC_UNSUPPORTED, message, grant)

    def _token_ok(self, edge_id: str, token: str) -> bool:
        key = self.playback_key
        return bool(key) and bool(token) and tokens.verify(key, edge_id, token, time.time())

    def _report(self, protocol: str, remote: str, edge_id: str, refused: PlayRefused) -> None:
        attempted = f"play {edge_id[:64]}"
        reason, grant = refused.reason, refused.grant
        self.refusals.report(
            protocol, remote, attempted, reason, str(refused), grant, role="player"
        )
