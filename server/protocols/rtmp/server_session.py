"""Server role above the chunk layer: the publish command sequence of protocols.md 5.4,
and ``play`` for players (answered as nginx-rtmp does).

The application decides authentication: ``connect``, ``publish`` and ``play`` become
events and wait for ``accept_*``/``reject_*``. Encoders do not always wait for the answer, so
messages that arrive meanwhile are *deferred* (bounded by ``max_deferred_bytes``) and
replayed in order after the decision; that keeps an early AVC sequence header.
Transaction IDs are only ever echoed, never used to match anything (rtmp2sink sends
0 for releaseStream, FCPublish and publish).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from . import amf0, commands
from .amf0 import UNDEFINED, AmfValue
from .chunk import Message
from .commands import Command
from .errors import LocalProtocolError, ProtocolError
from .events import (
    ConnectRequested,
    MediaKind,
    MediaReceived,
    MetadataReceived,
    PlayRequested,
    PlayStopped,
    PublishRequested,
    Unpublished,
)
from .limits import RtmpLimits
from .messages import MessageType, PeerBandwidthLimit, TimestampUnwrapper, UserControlEvent
from .messages import set_peer_bandwidth as peer_bandwidth_payload
from .messages import window_ack_size as window_ack_size_payload
from .outbox import Outbox

_AUDIO: Final = int(MessageType.AUDIO)
_VIDEO: Final = int(MessageType.VIDEO)
_DATA_CSID: Final = 5
"""Chunk stream for data messages to a player (the client role's DATA_CSID)."""
_IGNORED_COMMANDS: Final = frozenset({"_result", "_error", "onStatus", "onBWDone", "_onbwcheck"})


class _Phase(Enum):
    AWAIT_CONNECT = "await_connect"
    CONNECT_PENDING = "connect_pending"
    CONNECTED = "connected"


class _StreamState(Enum):
    CREATED = "created"
    PENDING = "pending"
    PUBLISHING = "publishing"
    PLAY_PENDING = "play_pending"
    PLAYING = "playing"


@dataclass(slots=True)
class _Stream:
    """One message stream created by createStream (or implied by publish)."""

    stream_id: int
    state: _StreamState = _StreamState.CREATED
    name: str = ""
    clocks: dict[int, TimestampUnwrapper] = field(default_factory=dict)

    def unwrap(self, type_id: int, raw: int) -> int:
        clock = self.clocks.get(type_id)
        if clock is None:
            clock = self.clocks[type_id] = TimestampUnwrapper()
        return clock.unwrap(raw)


class ServerSession:
    """Command handling, media gating and deferral for a server-side connection."""

    def __init__(self, outbox: Outbox, limits: RtmpLimits) -> None:
        self._out = outbox
        self._limits = limits
        self._phase = _Phase.AWAIT_CONNECT
        self._connect_tid = 0.0
        self.app = ""
        self.tc_url = ""
        self._streams: dict[int, _Stream] = {}
        self._next_stream_id = 1
        self._pending_publish: int | None = None
        self._pending_play: int | None = None
        self._deferred: deque[Message] = deque()
        self._deferred_bytes = 0
        self.published = False
        """A publish or play was accepted once: admission is over (deadline and byte cap)."""
        self.playing = False
        """A play was accepted: this peer only reads (no idle timeout on its silence)."""
        self.dropped_messages = 0
        """Media/data messages on streams that are not publishing (counted, not errors)."""

    @property
    def decision_pending(self) -> bool:
        """True while a connect or publish waits for the application."""
        return (
            self._phase is _Phase.CONNECT_PENDING
            or self._pending_publish is not None
            or self._pending_play is not None
        )

    @property
    def connect_pending(self) -> bool:
        return self._phase is _Phase.CONNECT_PENDING

    # ------------------------------------------------------------------ incoming

    def on_message(self, msg: Message) -> None:
        """Handle one non-control message (or defer it while a decision is pending)."""
        if self.decision_pending:
            self._defer(msg)
            return
        type_id = msg.type_id
        if type_id != _VIDEO and type_id != _AUDIO:
            self._handle(msg)
            return
        # audio/video, the hot path: handled right here, one call less per message
        stream = self._streams.get(msg.stream_id)
        if stream is None or stream.state is not _StreamState.PUBLISHING:
            self.dropped_messages += 1
            return
        clock = stream.clocks.get(type_id)
        if clock is None:
            clock = stream.clocks[type_id] = TimestampUnwrapper()
        kind: MediaKind = "audio" if type_id == _AUDIO else "video"
        event = MediaReceived(kind, clock.unwrap(msg.timestamp), msg.stream_id, msg.payload)
        self._out.events.append(event)

    def _defer(self, msg: Message) -> None:
        self._deferred_bytes += len(msg.payload)
        limits = self._limits
        limit = (
            limits.max_deferred_bytes
            if self.published
            else min(limits.max_deferred_bytes, limits.max_unpublished_bytes)
        )
        if self._deferred_bytes > limit:
            raise ProtocolError("peer sent too much before its connect/publish was answered")
        self._deferred.append(msg)

    def _replay(self) -> None:
        """Process deferred messages in order until the next decision is needed."""
        while self._deferred and not self.decision_pending and not self._out.closed:
            msg = self._deferred.popleft()
            self._deferred_bytes -= len(msg.payload)
            self.on_message(msg)  # no decision pending here, so it is handled, not deferred

    def _handle(self, msg: Message) -> None:
        """Everything but audio/video (on_message handles those itself)."""
        type_id = msg.type_id
        if type_id == MessageType.COMMAND_AMF0:
            self._command(commands.parse_command(msg.payload), msg)
        elif type_id == MessageType.COMMAND_AMF3:
            self._command(commands.parse_command(commands.strip_amf3_format(msg.payload)), msg)
        elif type_id == MessageType.DATA_AMF0:
            self._data(msg.payload, msg)
        elif type_id == MessageType.DATA_AMF3:
            self._data(commands.strip_amf3_format(msg.payload), msg)
        # shared objects (16/19) and unknown types are ignored

    def _data(self, body: bytes, msg: Message) -> None:
        """onMetaData becomes MetadataReceived; other data passes through as bytes. Data
        that does not decode is passed through too: bad metadata is no reason to hang up."""
        stream = self._streams.get(msg.stream_id)
        if stream is None or stream.state is not _StreamState.PUBLISHING:
            self.dropped_messages += 1
            return
        try:
            metadata = commands.extract_metadata(amf0.decode_all(body))
        except ProtocolError:
            metadata = None
        if metadata is not None:
            self._out.emit(MetadataReceived(msg.stream_id, metadata))
        else:
            timestamp = stream.unwrap(int(MessageType.DATA_AMF0), msg.timestamp)
            self._out.emit(MediaReceived("data", timestamp, msg.stream_id, body))

    # ------------------------------------------------------------------ commands

    def _command(self, cmd: Command, msg: Message) -> None:
        if self._phase is _Phase.AWAIT_CONNECT:
            if cmd.name != "connect":
                raise ProtocolError(f"command {cmd.name!r} before connect")
            self._on_connect(cmd)
            return
        handler = _HANDLERS.get(cmd.name)
        if handler is not None:
            handler(self, cmd, msg)
        elif cmd.transaction_id != 0 and cmd.name not in _IGNORED_COMMANDS:
            self._out.command(commands.result(cmd.transaction_id, None, UNDEFINED))

    def _on_connect(self, cmd: Command) -> None:
        props = cmd.command_object if isinstance(cmd.command_object, dict) else {}
        app = props.get("app")
        tc_url = props.get("tcUrl")
        self.app = app if isinstance(app, str) else ""
        self.tc_url = tc_url if isinstance(tc_url, str) else ""
        self._connect_tid = cmd.transaction_id
        self._phase = _Phase.CONNECT_PENDING
        self._out.emit(ConnectRequested(self.app, self.tc_url, dict(props)))

    def _on_duplicate_connect(self, cmd: Command, msg: Message) -> None:
        raise ProtocolError("second connect on one connection")

    def _on_release_stream(self, cmd: Command, msg: Message) -> None:
        if cmd.transaction_id != 0:
            self._out.command(commands.result(cmd.transaction_id, None, UNDEFINED))

    def _on_fc_publish(self, cmd: Command, msg: Message) -> None:
        info: dict[str, AmfValue] = {
            "code": commands.PUBLISH_START,
            "description": cmd.string_arg(0) or "",
        }
        self._out.command(commands.encode_command("onFCPublish", 0, None, info))

    def _on_create_stream(self, cmd: Command, msg: Message) -> None:
        stream = self._add_stream(self._next_stream_id)
        self._next_stream_id += 1
        self._out.command(commands.result(cmd.transaction_id, None, float(stream.stream_id)))

    def _add_stream(self, stream_id: int) -> _Stream:
        if len(self._streams) >= self._limits.max_streams:
            raise ProtocolError(f"more than {self._limits.max_streams} streams on one connection")
        stream = self._streams[stream_id] = _Stream(stream_id)
        return stream

    def _on_publish(self, cmd: Command, msg: Message) -> None:
        name = cmd.string_arg(0)
        if name is None:
            raise ProtocolError("publish without a stream name")
        stream = self._stream_for_publish(msg.stream_id)
        if stream.state is not _StreamState.CREATED:
            raise ProtocolError(f"publish on stream {stream.stream_id}, which is already in use")
        stream.state = _StreamState.PENDING
        stream.name = name
        self._pending_publish = stream.stream_id
        publish_type = cmd.string_arg(1) or "live"
        self._out.emit(PublishRequested(stream.stream_id, name, publish_type, self.app))

    def _stream_for_publish(self, stream_id: int) -> _Stream:
        """The stream a publish applies to: its message stream, created implicitly if a
        client skipped createStream; publish on stream 0 means the newest stream."""
        if stream_id == 0:
            if not self._streams:
                raise ProtocolError("publish on message stream 0 without createStream")
            return self._streams[max(self._streams)]
        stream = self._streams.get(stream_id)
        return stream if stream is not None else self._add_stream(stream_id)

    def _on_fc_unpublish(self, cmd: Command, msg: Message) -> None:
        name = cmd.string_arg(0)
        for stream in self._streams.values():
            if stream.state is _StreamState.PUBLISHING and stream.name == name:
                self._stop(stream)

    def _on_delete_stream(self, cmd: Command, msg: Message) -> None:
        """deleteStream(id); rtmp2sink sends the stream key string instead of the id."""
        arg = cmd.arg(0)
        stream_id = commands.as_stream_id(arg)
        if stream_id is None and isinstance(arg, str):
            stream_id = next((s.stream_id for s in self._streams.values() if s.name == arg), None)
        stream = self._streams.get(stream_id) if stream_id is not None else None
        if stream is not None:
            self._stop(stream)
            del self._streams[stream.stream_id]

    def _on_close_stream(self, cmd: Command, msg: Message) -> None:
        stream = self._streams.get(msg.stream_id)
        if stream is not None:
            self._stop(stream)

    def _on_play(self, cmd: Command, msg: Message) -> None:
        """play(name[, start, duration, reset]): only the name matters for live playback."""
        name = cmd.string_arg(0)
        if name is None:
            raise ProtocolError("play without a stream name")
        stream = self._stream_for_publish(msg.stream_id)
        if stream.state is not _StreamState.CREATED:
            raise ProtocolError(f"play on stream {stream.stream_id}, which is already in use")
        stream.state = _StreamState.PLAY_PENDING
        stream.name = name
        self._pending_play = stream.stream_id
        self._out.emit(PlayRequested(stream.stream_id, name, self.app))

    def _on_get_stream_length(self, cmd: Command, msg: Message) -> None:
        """ffmpeg asks before playing; a live stream has no length (0)."""
        if cmd.transaction_id != 0:
            self._out.command(commands.result(cmd.transaction_id, None, 0.0))

    def _stop(self, stream: _Stream) -> None:
        if stream.state is _StreamState.PLAYING:
            self._out.emit(PlayStopped(stream.stream_id))
        if stream.state is _StreamState.PUBLISHING:
            self._out.emit(Unpublished(stream.stream_id))
            info = commands.status_info(
                "status", commands.UNPUBLISH_SUCCESS, f"{stream.name} is now unpublished."
            )
            self._out.command(commands.on_status(info), stream.stream_id)
        stream.state = _StreamState.CREATED
        stream.name = ""
        stream.clocks.clear()

    # ------------------------------------------------------------------ decisions

    def accept_connect(self, extra_properties: Mapping[str, AmfValue] | None = None) -> None:
        """Answer connect exactly as protocols.md 5.4 lists it, then replay deferrals."""
        if self._phase is not _Phase.CONNECT_PENDING:
            raise LocalProtocolError("no connect is waiting for a decision")
        window = self._limits.ack_window
        self._out.control(MessageType.WINDOW_ACK_SIZE, window_ack_size_payload(window))
        self._out.control(
            MessageType.SET_PEER_BANDWIDTH,
            peer_bandwidth_payload(window, PeerBandwidthLimit.DYNAMIC),
        )
        self._out.user_control(UserControlEvent.STREAM_BEGIN, 0)
        self._out.set_chunk_size(self._limits.out_chunk_size)
        self._out.command(commands.connect_result(self._connect_tid, extra_properties))
        self._phase = _Phase.CONNECTED
        self._replay()

    def reject_connect(self, description: str, code: str = commands.CONNECT_REJECTED) -> None:
        if self._phase is not _Phase.CONNECT_PENDING:
            raise LocalProtocolError("no connect is waiting for a decision")
        info = commands.status_info("error", code, description)
        self._out.command(commands.error(self._connect_tid, None, info))
        self._close()

    def accept_publish(self, stream_id: int) -> None:
        stream = self._pending_stream(stream_id)
        stream.state = _StreamState.PUBLISHING
        self._pending_publish = None
        self.published = True
        self._out.user_control(UserControlEvent.STREAM_BEGIN, stream_id)
        info = commands.status_info(
            "status",
            commands.PUBLISH_START,
            f"{stream.name} is now published",
            details=stream.name,
        )
        self._out.command(commands.on_status(info), stream_id)
        self._replay()

    def reject_publish(
        self, stream_id: int, code: str = commands.PUBLISH_BAD_NAME, description: str = ""
    ) -> None:
        stream = self._pending_stream(stream_id)
        self._refuse(stream_id, code, description or f"{stream.name} cannot be published")

    def accept_play(self, stream_id: int) -> None:
        """StreamBegin, Play.Reset, Play.Start and |RtmpSampleAccess, as nginx-rtmp
        answers: ffmpeg starts reading at Play.Start, Flash-era players need the rest."""
        stream = self._play_stream(stream_id)
        stream.state = _StreamState.PLAYING
        self._pending_play = None
        self.published = True
        self.playing = True
        self._out.user_control(UserControlEvent.STREAM_BEGIN, stream_id)
        for code, text in (
            (commands.PLAY_RESET, f"Playing and resetting {stream.name}."),
            (commands.PLAY_START, f"Started playing {stream.name}."),
        ):
            info = commands.status_info("status", code, text, details=stream.name)
            self._out.command(commands.on_status(info), stream_id)
        self._out.send(
            _DATA_CSID, int(MessageType.DATA_AMF0), stream_id, 0, commands.sample_access()
        )
        self._replay()

    def reject_play(
        self, stream_id: int, code: str = commands.PLAY_FAILED, description: str = ""
    ) -> None:
        """A level-"error" onStatus (players print its description), then hang up."""
        stream = self._play_stream(stream_id)
        self._refuse(stream_id, code, description or f"{stream.name} cannot be played")

    def _refuse(self, stream_id: int, code: str, text: str) -> None:
        """A level-"error" onStatus on the stream, then hang up (publish or play)."""
        info = commands.status_info("error", code, text)
        self._out.command(commands.on_status(info), stream_id)
        self._close()

    def send_play_metadata(self, stream_id: int, metadata: Mapping[str, AmfValue]) -> None:
        """``onMetaData`` on a playing stream (before its sequence headers)."""
        payload = commands.on_metadata(metadata)
        self._out.send(_DATA_CSID, int(MessageType.DATA_AMF0), stream_id, 0, payload)

    def end_play(self, stream_id: int, description: str) -> None:
        """The stream being played ended: UnpublishNotify and Play.Stop, as nginx-rtmp."""
        for code in (commands.PLAY_UNPUBLISH_NOTIFY, commands.PLAY_STOP):
            info = commands.status_info("status", code, description)
            self._out.command(commands.on_status(info), stream_id)
        self._out.user_control(UserControlEvent.STREAM_EOF, stream_id)

    def _play_stream(self, stream_id: int) -> _Stream:
        if self._pending_play is None or self._pending_play != stream_id:
            raise LocalProtocolError(f"no play on stream {stream_id} is waiting for a decision")
        return self._streams[stream_id]

    def _pending_stream(self, stream_id: int) -> _Stream:
        if self._pending_publish is None or self._pending_publish != stream_id:
            raise LocalProtocolError(f"no publish on stream {stream_id} is waiting for a decision")
        return self._streams[stream_id]

    def close(self, description: str | None) -> None:
        """Hang up; with a description, first tell a connected peer why (ffmpeg prints it)."""
        if description is not None and self._phase is _Phase.CONNECTED:
            info = commands.status_info("status", commands.CONNECT_CLOSED, description)
            self._out.command(commands.on_status(info))
        self._close()

    def _close(self) -> None:
        self._out.closed = True
        self.release()

    def release(self) -> None:
        """Forget deferred messages (the connection is finished)."""
        self._deferred.clear()
        self._deferred_bytes = 0


_Handler = Callable[[ServerSession, Command, Message], None]
_HANDLERS: dict[str, _Handler] = {
    "connect": ServerSession._on_duplicate_connect,
    "releaseStream": ServerSession._on_release_stream,
    "FCPublish": ServerSession._on_fc_publish,
    "createStream": ServerSession._on_create_stream,
    "publish": ServerSession._on_publish,
    "FCUnpublish": ServerSession._on_fc_unpublish,
    "deleteStream": ServerSession._on_delete_stream,
    "closeStream": ServerSession._on_close_stream,
    "play": ServerSession._on_play,
    "getStreamLength": ServerSession._on_get_stream_length,
}
