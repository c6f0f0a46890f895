"""One live stream's RTMP players fed from one bus reader: every message is chunked
once and the same bytes are written to every player.

Chunking each frame again for each player (its own reader, timeline, task and
wake-ups) made a player cost 5 x what nginx-rtmp pays for one. The players of a
stream share the chunk size and the message stream id (the one ``createStream``
gave, 1 for every player we know), and every message is a self-contained fmt-0
chunk sequence on the stream's timeline, so the wire bytes are identical for all of
them. That timeline starts at zero with the fanout's first frame, so a player that
joins later starts at a later timestamp, as with nginx-rtmp; ffmpeg, ffplay and VLC
take the first timestamp as the start.

A player is held to its transport's bound instead of a queue of its own: while its
socket and write buffer are full (the transport paused writing), it misses what is
sent (counted as dropped frames) and resumes at the next keyframe with the codec
configuration; paused for ``stall`` seconds, it is hung up on. The publisher and the
other players never wait for it.

No IO here and no clock: the caller passes ``now`` and writes through the players.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from server.bus import ConfigChange, Discontinuity, EndOfStream, Reader
from server.media.flv import build_on_metadata, build_tag_body, tag_timestamp_ms
from server.media.frame import CodecConfig, Frame, TrackKind
from server.protocols.rtmp.chunk import encode_message
from server.protocols.rtmp.client_session import AUDIO_CSID, VIDEO_CSID
from server.protocols.rtmp.messages import MessageType
from server.push.timeline import Timeline

_VIDEO = TrackKind.VIDEO
_DATA = TrackKind.DATA
_CONFIG_ORDER = (TrackKind.VIDEO, TrackKind.AUDIO)


class FanoutPlayer(Protocol):
    """One player as the fanout drives it (``server.playback.rtmp`` over a connection)."""

    @property
    def paused(self) -> bool:
        """True while the transport holds more than its bound (stop writing)."""

    def begin(self, metadata: Mapping[str, float | str | bool], wire: bytes) -> None:
        """``onMetaData`` on the player's stream, then ``wire`` (configs, media)."""

    def write(self, wire: bytes) -> None:
        """Pre-chunked media, after everything written before."""

    def end(self, reason: str, stream_ended: bool) -> None:
        """The fanout is done with this player (tell it the stream ended when so)."""


@dataclass(slots=True)
class _Member:
    player: FanoutPlayer
    started: bool = False  # had its onMetaData and configs
    synced: bool = False  # the next shared bytes follow on from what it was sent
    paused_since: float | None = None


@dataclass(slots=True)
class _Start:
    """Where a player can start: codec configs as they were there, and the timestamp."""

    configs: dict[TrackKind, CodecConfig]
    timestamp_ms: int


class RtmpFanout:
    """The players of one stream with one chunk size and message stream id."""

    def __init__(
        self, reader: Reader, chunk_size: int, stream_id: int, stall: float, max_gop_bytes: int
    ) -> None:
        self.reader = reader
        self.chunk_size = chunk_size
        self.stream_id = stream_id
        self.stall = stall
        self.max_gop_bytes = max_gop_bytes
        self.timeline = Timeline()
        self.configs: dict[TrackKind, CodecConfig] = {}
        self.members: list[_Member] = []
        self.joining: list[_Member] = []
        self.started = False  # a frame went out: later configs are shared messages
        self.ended = False
        # the messages since the latest keyframe, for the next joiner (None: too big)
        self.gop: list[bytes] | None = None
        self.gop_bytes = 0
        self.gop_start: _Start | None = None

    # ------------------------------------------------------------ membership

    def add(self, player: FanoutPlayer) -> None:
        """Join at the next ``tick`` (after what the connection already queued)."""
        self.joining.append(_Member(player))

    def remove(self, player: FanoutPlayer) -> None:
        self.members = [m for m in self.members if m.player is not player]
        self.joining = [m for m in self.joining if m.player is not player]

    @property
    def empty(self) -> bool:
        return not self.members and not self.joining

    def close(self) -> None:
        """Release the bus reader (the fanout is done)."""
        self.ended = True
        self.reader.close()

    def fail(self, reason: str) -> None:
        """Let every player go (the fanout cannot go on)."""
        self.ended = True
        members, self.members, self.joining = self.members + self.joining, [], []
        for member in members:
            member.player.end(reason, False)

    # ------------------------------------------------------------ one wake-up

    def tick(self, now: float) -> bool:
        """Send what arrived since the last tick to every player; True once the stream
        ended (then every player was told and dropped)."""
        parts, sync, frames, before, start, ended = self._take()
        if parts:
            self._send(now, parts, sync, frames, before, start)
        else:
            self._check_stalls(now)
        self._admit()
        if ended:
            self.ended = True
            members, self.members, self.joining = self.members + self.joining, [], []
            for member in members:
                member.player.end("stream ended", True)
        return ended

    def _take(self) -> tuple[list[bytes], int, int, int, _Start | None, bool]:
        """The reader's items as messages; the index of the first sync point and the
        frames in all and before it."""
        reader, timeline, configs = self.reader, self.timeline, self.configs
        parts: list[bytes] = []
        sync, frames, before = -1, 0, 0
        start: _Start | None = None
        while (item := reader.next_nowait()) is not None:
            if type(item) is Frame:
                if item.track is _DATA:
                    continue
                shifted = timeline.shift(item)
                if item.keyframe and (item.track is _VIDEO or _VIDEO not in configs):
                    here = _Start(dict(configs), tag_timestamp_ms(shifted))
                    if sync < 0:
                        sync, before, start = len(parts), frames, here
                    self.gop, self.gop_bytes, self.gop_start = [], 0, here
                wire = self._message(shifted.track, tag_timestamp_ms(shifted), shifted)
                parts.append(wire)
                frames += 1
                self.started = True
                self._keep(wire)
            elif isinstance(item, ConfigChange):
                configs[item.config.track] = item.config
                if self.started:
                    wire = self._message(item.config.track, timeline.last_ms, item.config)
                    parts.append(wire)
                    self._keep(wire)
            elif isinstance(item, Discontinuity):
                timeline.discontinuity()
            elif isinstance(item, EndOfStream):
                return parts, sync, frames, before, start, True
        return parts, sync, frames, before, start, False

    def _message(self, track: TrackKind, timestamp_ms: int, item: Frame | CodecConfig) -> bytes:
        if track is _VIDEO:
            csid, kind = VIDEO_CSID, MessageType.VIDEO
        else:
            csid, kind = AUDIO_CSID, MessageType.AUDIO
        body = build_tag_body(item)
        return encode_message(csid, kind, self.stream_id, timestamp_ms, body, self.chunk_size)

    def _keep(self, wire: bytes) -> None:
        gop = self.gop
        if gop is not None:
            self.gop_bytes += len(wire)
            if self.gop_bytes > self.max_gop_bytes:
                self.gop, self.gop_bytes = None, 0  # joiners wait for the next keyframe
            else:
                gop.append(wire)

    def _configs(self, start: _Start) -> bytes:
        """Sequence headers, video first (as the pushers send them)."""
        configs = start.configs
        return b"".join(
            self._message(track, start.timestamp_ms, configs[track])
            for track in _CONFIG_ORDER
            if track in configs
        )

    def _send(
        self,
        now: float,
        parts: list[bytes],
        sync: int,
        frames: int,
        before: int,
        start: _Start | None,
    ) -> None:
        batch = parts[0] if len(parts) == 1 else b"".join(parts)
        dropped = 0
        for member in list(self.members):  # a stuck one is removed on the way
            player = member.player
            if player.paused:
                if member.paused_since is None:
                    member.paused_since = now
                elif now - member.paused_since >= self.stall:
                    self._hang_up(member)
                    continue
                member.synced = False
                dropped += frames
            elif member.synced:
                player.write(batch)
            else:
                member.paused_since = None
                if start is None:
                    dropped += frames
                    continue
                tail = self._configs(start) + b"".join(parts[sync:])
                if member.started:
                    player.write(tail)
                else:
                    player.begin(_metadata(start), tail)
                    member.started = True
                member.synced = True
                dropped += before
        if dropped:
            self.reader.dropped_downstream(dropped)

    def _check_stalls(self, now: float) -> None:
        """Also without media (encoder away): a player stuck for ``stall`` goes."""
        for member in list(self.members):
            if not member.player.paused:
                member.paused_since = None
            elif member.paused_since is None:
                member.paused_since = now
            elif now - member.paused_since >= self.stall:
                self._hang_up(member)

    def _hang_up(self, member: _Member) -> None:
        self.members.remove(member)
        member.player.end(f"player stopped reading for {self.stall:g} s", False)

    def _admit(self) -> None:
        """Joiners get the stream from the latest keyframe, or wait for the next one."""
        joining, self.joining = self.joining, []
        for member in joining:
            start, gop = self.gop_start, self.gop
            if start is not None and gop:
                member.player.begin(_metadata(start), self._configs(start) + b"".join(gop))
                member.started = member.synced = True
            self.members.append(member)


def _metadata(start: _Start) -> dict[str, float | str | bool]:
    return build_on_metadata(start.configs.get(TrackKind.VIDEO), start.configs.get(TrackKind.AUDIO))
