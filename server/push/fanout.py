"""The RTMP destinations of one bus stream fed together: each message chunked once.

A pusher used to read the bus, rebase the timestamps, build the FLV tag body and
chunk every message for its own destination, in a task of its own woken every batch
interval, so ten destinations cost ten times that work and ten wake-ups (5 x what
nginx-rtmp's ``push`` spends). Destinations with the same chunk size, message
stream id and timeline get byte-identical messages, so a :class:`PushFanout` does
the work once for all of them: one bus reader, one timeline, every message chunked
once, one join per wake-up, and one ``send_shared`` of the same bytes per
destination.

The timeline starts at zero with the fanout's first frame, as a connection of its
own did. A destination therefore joins only while the fanout is still in its first
GOP: it then gets everything from that first frame, which is what a reader of its
own would have given it; a destination that connects later starts a fanout of its
own (:attr:`PushFanout.joinable`).

Each destination keeps its own bound and fate. While its transport is full, the
shared bytes wait in its backlog (references, not copies), bounded like the bus
reader it used to have (messages and bytes); past that bound it drops what it holds
and resumes at the next keyframe with the codec configuration (counted). A
destination that cannot write for ``stall`` seconds ends with :class:`PushStalled`,
and one whose connection fails ends with that error; neither touches the others.

No IO and no clock: the caller passes ``now`` and owns the task (``server.push.groups``).
"""

from __future__ import annotations

from collections.abc import Callable

from server.bus import ConfigChange, Discontinuity, EndOfStream, Reader
from server.media.flv import build_on_metadata, build_tag_body, tag_timestamp_ms
from server.media.frame import CodecConfig, Frame, TrackKind
from server.protocols.rtmp.chunk import encode_message
from server.protocols.rtmp.client_session import AUDIO_CSID, VIDEO_CSID
from server.protocols.rtmp.messages import MessageType

from .ports import PushStalled, SharedSink
from .timeline import Timeline

WRITE_SLICE = 256 * 1024
"""Largest write of a backlog (or of a wake-up's batch) before the transport is
checked for room again, so a destination never exceeds its hard write-buffer bound."""

_CONFIG_ROOM = 64 * 1024
"""Bytes kept free in a joiner's bound for the configs' messages."""
_VIDEO = TrackKind.VIDEO
_DATA = TrackKind.DATA
_CONFIG_ORDER = (TrackKind.VIDEO, TrackKind.AUDIO)

Ended = Callable[[Exception | None], None]
"""Called once when the fanout is done with a destination: None at the end of the
stream or when the destination should switch streams, else why it failed."""


class _Start:
    """A point a destination can start at: the codec configs there, and its timestamp."""

    __slots__ = ("configs", "timestamp_ms", "wire")

    def __init__(self, configs: dict[TrackKind, CodecConfig], timestamp_ms: int) -> None:
        self.configs = configs
        self.timestamp_ms = timestamp_ms
        self.wire: bytes | None = None  # the configs' messages, built for the first taker

    def metadata(self) -> dict[str, float | str | bool]:
        configs = self.configs
        return build_on_metadata(configs.get(TrackKind.VIDEO), configs.get(TrackKind.AUDIO))


class _Sync:
    """A start inside one wake-up's messages: its index and the frames before it."""

    __slots__ = ("before", "index", "start")

    def __init__(self, index: int, before: int, start: _Start) -> None:
        self.index = index
        self.before = before
        self.start = start


class Member:
    """One destination of a fanout."""

    __slots__ = (
        "backlog",
        "backlog_bytes",
        "dropped",
        "ended",
        "flags",
        "on_end",
        "paused_since",
        "sink",
        "started",
        "switch",
        "synced",
    )

    def __init__(self, sink: SharedSink, on_end: Ended, switch: Callable[[], bool] | None) -> None:
        self.sink = sink
        self.on_end = on_end
        # True when this connection should end for another stream (the awaited rendition)
        self.switch = switch
        self.started = False  # had its onMetaData
        self.synced = False  # what the fanout sends next follows on from what it had
        self.backlog: list[bytes] = []  # shared messages its transport had no room for
        self.flags: list[bool] = []  # per backlog message: a frame (not a config)
        self.backlog_bytes = 0
        self.dropped = 0  # frames it lost to its own bound
        self.paused_since: float | None = None
        self.ended = False


class PushFanout:
    """The destinations of one bus stream with one chunk size, message stream id and
    timeline; :meth:`tick` once per batch interval."""

    def __init__(
        self,
        reader: Reader,
        chunk_size: int,
        stream_id: int,
        *,
        stall: float,
        max_items: int,
        max_bytes: int,
    ) -> None:
        self.reader = reader
        self.chunk_size = chunk_size
        self.stream_id = stream_id
        self.stall = stall
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.timeline = Timeline()
        self.configs: dict[TrackKind, CodecConfig] = {}
        self.members: list[Member] = []
        self.joining: list[Member] = []
        self.started = False  # the first frame went out
        self.ending = False  # the stream ended: members go once their backlog is out
        self.closed = False
        # everything since the first frame while still in the first GOP, for joiners
        self.first: _Start | None = None
        self.held: list[bytes] | None = []
        self.held_flags: list[bool] = []
        self.held_bytes = 0
        self.reported = 0  # frames dropped by members, added to the reader's count

    # ------------------------------------------------------------ membership

    @property
    def joinable(self) -> bool:
        """A new destination may join: it would get what a reader of its own would."""
        return self.held is not None and not self.ending and not self.closed

    def add(self, member: Member) -> None:
        """Join at the next :meth:`tick`, before what arrived meanwhile."""
        self.joining.append(member)

    def remove(self, member: Member) -> None:
        """The destination went away (its pusher stopped); idempotent, no callback."""
        member.ended = True
        if member in self.members:
            self.members.remove(member)
        if member in self.joining:
            self.joining.remove(member)

    @property
    def empty(self) -> bool:
        return not self.members and not self.joining

    @property
    def upstream_dropped(self) -> int:
        """Frames the fanout's own reader lost (its wake-ups fell behind): every
        destination lost them."""
        return self.reader.dropped_frames - self.reported

    def close(self) -> None:
        """Release the bus reader (the fanout is done)."""
        self.closed = True
        self.held = None
        self.reader.close()

    def fail(self, error: Exception) -> None:
        """Let every destination go with ``error`` (the fanout cannot go on)."""
        for member in self.members + self.joining:
            self._end(member, error)
        self.joining.clear()

    # ------------------------------------------------------------ one wake-up

    def tick(self, now: float) -> bool:
        """Send what arrived since the last tick to every destination; True once the
        fanout is finished (the stream ended and every destination was let go)."""
        if self.joining:
            self._admit()
        if self.ending:
            parts: list[bytes] = []
            flags: list[bool] = []
            syncs: list[_Sync] = []
            frames = 0
        else:
            parts, flags, syncs, frames, ended = self._take()
            if ended:
                self.ending = True
                self.held = None
        batch = b"".join(parts) if len(parts) > 1 else parts[0] if parts else b""
        dropped = 0
        for member in tuple(self.members):
            before = member.dropped
            try:
                self._serve(member, now, parts, flags, syncs, frames, batch)
            except Exception as exc:  # this destination's connection failed: it alone ends
                self._end(member, exc)
            dropped += member.dropped - before
        if dropped:
            self.reported += dropped
            self.reader.dropped_downstream(dropped)
        if self.ending:
            for member in tuple(self.members):
                if not member.backlog:
                    self._end(member, None)
        return self.ending and not self.members

    def _take(self) -> tuple[list[bytes], list[bool], list[_Sync], int, bool]:
        """The reader's items as messages, whether each is a frame, where destinations
        may start, the frames in all, and whether the stream ended."""
        reader, timeline, configs = self.reader, self.timeline, self.configs
        parts: list[bytes] = []
        flags: list[bool] = []
        syncs: list[_Sync] = []
        frames = 0
        ended = False
        while (item := reader.next_nowait()) is not None:
            if type(item) is Frame:
                if item.track is _DATA:
                    continue
                shifted = timeline.shift(item)
                timestamp = tag_timestamp_ms(shifted)
                if not self.started:
                    self.started = True
                    self.first = _Start(dict(configs), timestamp)
                    syncs.append(_Sync(len(parts), frames, self.first))
                elif item.keyframe and (item.track is _VIDEO or _VIDEO not in configs):
                    syncs.append(_Sync(len(parts), frames, _Start(dict(configs), timestamp)))
                    self.held = None  # a reader of its own would start here: not joinable
                parts.append(self._message(shifted.track, timestamp, build_tag_body(shifted)))
                flags.append(True)
                frames += 1
            elif isinstance(item, ConfigChange):
                config = item.config
                configs[config.track] = config
                if self.started:
                    parts.append(
                        self._message(config.track, timeline.last_ms, build_tag_body(config))
                    )
                    flags.append(False)
            elif isinstance(item, Discontinuity):
                timeline.discontinuity()
            elif isinstance(item, EndOfStream):
                ended = True
                break
        held = self.held
        if held is not None and parts:
            held.extend(parts)
            self.held_flags.extend(flags)
            self.held_bytes += sum(len(part) for part in parts)
            # a joiner takes the configs too, and must fit its own bound with them
            if len(held) + 2 > self.max_items or self.held_bytes + _CONFIG_ROOM > self.max_bytes:
                self.held = None
        if self.held is None:
            self.held_flags = []
            self.held_bytes = 0
        return parts, flags, syncs, frames, ended

    def _message(self, track: TrackKind, timestamp_ms: int, body: bytes) -> bytes:
        if track is _VIDEO:
            csid, kind = VIDEO_CSID, MessageType.VIDEO
        else:
            csid, kind = AUDIO_CSID, MessageType.AUDIO
        return encode_message(csid, kind, self.stream_id, timestamp_ms, body, self.chunk_size)

    def _configs(self, start: _Start) -> bytes:
        """Sequence headers at ``start``, video first (built once per start)."""
        wire = start.wire
        if wire is None:
            configs = start.configs
            wire = start.wire = b"".join(
                self._message(track, start.timestamp_ms, build_tag_body(configs[track]))
                for track in _CONFIG_ORDER
                if track in configs
            )
        return wire

    # ------------------------------------------------------------ one destination

    def _serve(
        self,
        member: Member,
        now: float,
        parts: list[bytes],
        flags: list[bool],
        syncs: list[_Sync],
        frames: int,
        batch: bytes,
    ) -> None:
        sink = member.sink
        error = sink.error
        if error is not None:
            self._end(member, error)
            return
        switch = member.switch
        if switch is not None and switch():
            self._end(member, None)
            return
        if member.backlog:  # what it held goes first, making room where it can
            self._flush(member)
        if parts:
            if not member.synced:
                if syncs:
                    self._resume(member, parts, flags, syncs[0])
                else:
                    member.dropped += frames
            elif member.backlog or len(batch) > WRITE_SLICE or not sink.writable:
                self._queue(member, parts, flags)
            else:
                sink.send_shared(batch)
        if member.backlog:
            self._flush(member)
        if sink.writable:
            member.paused_since = None
        elif member.paused_since is None:
            member.paused_since = now
        elif now - member.paused_since >= self.stall:
            self._end(member, PushStalled(f"destination stopped reading for {self.stall:g} s"))

    def _resume(self, member: Member, parts: list[bytes], flags: list[bool], sync: _Sync) -> None:
        """Start (or start again, after a drop) at ``sync``: onMetaData the first time,
        then the configs there and the messages from there on."""
        member.dropped += sync.before
        start = sync.start
        if not member.started:
            member.sink.send_metadata(start.metadata())
            member.started = True
        member.synced = True
        index = sync.index
        self._queue(member, [self._configs(start), *parts[index:]], [False, *flags[index:]])

    def _queue(self, member: Member, parts: list[bytes], flags: list[bool]) -> None:
        """Hold ``parts`` for the destination; past its bound, drop what it holds and
        wait for the next start."""
        member.backlog.extend(parts)
        member.flags.extend(flags)
        member.backlog_bytes += sum(len(part) for part in parts)
        if len(member.backlog) > self.max_items or member.backlog_bytes > self.max_bytes:
            member.dropped += sum(member.flags)
            member.backlog.clear()
            member.flags.clear()
            member.backlog_bytes = 0
            member.synced = False

    def _flush(self, member: Member) -> None:
        """Write the backlog in slices while the transport has room."""
        sink, backlog = member.sink, member.backlog
        while backlog and sink.writable:
            count, size = 1, len(backlog[0])
            while count < len(backlog) and size + len(backlog[count]) <= WRITE_SLICE:
                size += len(backlog[count])
                count += 1
            wire = backlog[0] if count == 1 else b"".join(backlog[:count])
            del backlog[:count]
            del member.flags[:count]
            member.backlog_bytes -= size
            sink.send_shared(wire)

    def _admit(self) -> None:
        """Joiners get everything since the first frame (or wait for it)."""
        joining, self.joining = self.joining, []
        for member in joining:
            if member.ended:
                continue
            self.members.append(member)
            if self.ending:
                self._end(member, None)
                continue
            first, held = self.first, self.held
            if first is None or held is None:
                continue  # not started: it starts with the first frame (else: next keyframe)
            try:
                member.sink.send_metadata(first.metadata())
            except Exception as exc:  # its connection failed meanwhile: it alone ends
                self._end(member, exc)
                continue
            member.started = member.synced = True
            self._queue(member, [self._configs(first), *held], [False, *self.held_flags])

    def _end(self, member: Member, error: Exception | None) -> None:
        if member.ended:
            return
        member.ended = True
        if member in self.members:
            self.members.remove(member)
        member.backlog.clear()
        member.flags.clear()
        member.backlog_bytes = 0
        member.on_end(error)
