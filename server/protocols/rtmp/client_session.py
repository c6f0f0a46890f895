"""Client (publisher) role above the chunk layer: protocols.md 5.5, as verified against
``ffmpeg -listen 1``.

After the handshake the sequence runs by itself: Set Chunk Size, connect (tid 1) ->
releaseStream (2), FCPublish (3), createStream (4) -> publish (5) on the returned
stream -> ``PublishStarted`` on ``NetStream.Publish.Start``; any refusal becomes
``PublishFailed`` and closes the connection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from . import commands
from .amf0 import UNDEFINED, AmfValue
from .chunk import Message
from .commands import Command
from .errors import LocalProtocolError, ProtocolError
from .events import PublishFailed, PublishStarted, ReconnectRequested
from .limits import RtmpLimits
from .messages import MessageType
from .outbox import Outbox

AUDIO_CSID = 4
DATA_CSID = 5
VIDEO_CSID = 6

_TID_CONNECT = 1.0
_TID_RELEASE = 2.0
_TID_FCPUBLISH = 3.0
_TID_CREATE = 4.0
_TID_PUBLISH = 5.0
_TID_FCUNPUBLISH = 6.0
_TID_DELETE = 7.0
_QUIET_COMMANDS = frozenset({"onBWDone", "onFCPublish", "onFCUnpublish", "_result", "_error"})


class _Phase(Enum):
    IDLE = "idle"
    HANDSHAKING = "handshaking"
    CONNECTING = "connecting"
    CREATING_STREAM = "creating_stream"
    PUBLISH_REQUESTED = "publish_requested"
    PUBLISHING = "publishing"
    FINISHED = "finished"


_WAITING_PHASES = frozenset({_Phase.CONNECTING, _Phase.CREATING_STREAM, _Phase.PUBLISH_REQUESTED})


@dataclass(frozen=True, slots=True)
class _Target:
    app: str
    tc_url: str
    stream_name: str
    fourcc_list: Sequence[str] | None
    extra_properties: Mapping[str, AmfValue] | None


class ClientSession:
    """Drives connect/createStream/publish and frames our outgoing media."""

    def __init__(self, outbox: Outbox, limits: RtmpLimits) -> None:
        self._out = outbox
        self._limits = limits
        self._phase = _Phase.IDLE
        self._target: _Target | None = None
        self.stream_id = 0

    @property
    def started(self) -> bool:
        return self._phase is not _Phase.IDLE

    @property
    def publishing(self) -> bool:
        return self._phase is _Phase.PUBLISHING

    @property
    def waiting_for_server(self) -> bool:
        """True until the publish is answered: only then is a silent server a fault."""
        return self._phase is not _Phase.PUBLISHING and self._phase is not _Phase.FINISHED

    def start(
        self,
        app: str,
        tc_url: str,
        stream_name: str,
        fourcc_list: Sequence[str] | None,
        extra_properties: Mapping[str, AmfValue] | None,
    ) -> None:
        if self._phase is not _Phase.IDLE:
            raise LocalProtocolError("start() may be called once")
        self._target = _Target(app, tc_url, stream_name, fourcc_list, extra_properties)
        self._phase = _Phase.HANDSHAKING

    def on_handshake_complete(self) -> None:
        """Our chunk size first (connect may be large with E-RTMP maps), then connect."""
        target = self._require_target()
        self._out.set_chunk_size(self._limits.out_chunk_size)
        payload = commands.connect(
            _TID_CONNECT,
            target.app,
            target.tc_url,
            fourcc_list=target.fourcc_list,
            extra_properties=target.extra_properties,
        )
        self._out.command(payload)
        self._phase = _Phase.CONNECTING

    def _require_target(self) -> _Target:
        if self._target is None:
            raise LocalProtocolError("start() has not been called")
        return self._target

    # ------------------------------------------------------------------ incoming

    def on_message(self, msg: Message) -> None:
        """Only commands matter to a publisher; data and media from the server are ignored."""
        if msg.type_id == MessageType.COMMAND_AMF0:
            self._command(commands.parse_command(msg.payload))
        elif msg.type_id == MessageType.COMMAND_AMF3:
            self._command(commands.parse_command(commands.strip_amf3_format(msg.payload)))

    def _command(self, cmd: Command) -> None:
        if cmd.name == "_result":
            self._on_result(cmd)
        elif cmd.name == "_error":
            self._on_error(cmd)
        elif cmd.name == "onStatus":
            self._on_status(cmd)
        elif cmd.transaction_id != 0 and cmd.name not in _QUIET_COMMANDS:
            # _checkbw and friends: answer like a well-behaved client, ignore the rest
            self._out.command(commands.result(cmd.transaction_id, None, UNDEFINED))

    def _on_result(self, cmd: Command) -> None:
        tid = cmd.transaction_id
        if tid == _TID_CONNECT and self._phase is _Phase.CONNECTING:
            name = self._require_target().stream_name
            self._out.command(commands.release_stream(_TID_RELEASE, name))
            self._out.command(commands.fc_publish(_TID_FCPUBLISH, name))
            self._out.command(commands.create_stream(_TID_CREATE))
            self._phase = _Phase.CREATING_STREAM
        elif tid == _TID_CREATE and self._phase is _Phase.CREATING_STREAM:
            stream_id = commands.as_stream_id(cmd.arg(0))
            if stream_id is None or stream_id == 0:
                raise ProtocolError("createStream answered without a usable stream id")
            self.stream_id = stream_id
            name = self._require_target().stream_name
            self._out.command(commands.publish(_TID_PUBLISH, name), stream_id)
            self._phase = _Phase.PUBLISH_REQUESTED

    def _on_error(self, cmd: Command) -> None:
        """A refused connect, createStream or publish ends the attempt; other errors
        (releaseStream on servers that do not know it) are harmless."""
        waiting = self._phase in _WAITING_PHASES
        if waiting and cmd.transaction_id in (_TID_CONNECT, _TID_CREATE, _TID_PUBLISH):
            code, description = _code_and_description(cmd.arg(0))
            self._fail(code or "NetConnection.Call.Failed", description)

    def _on_status(self, cmd: Command) -> None:
        info = cmd.arg(0)
        code, description = _code_and_description(info)
        level = info.get("level") if isinstance(info, dict) else None
        if code == commands.RECONNECT_REQUEST:
            tc_url = info.get("tcUrl") if isinstance(info, dict) else None
            self._out.emit(
                ReconnectRequested(tc_url if isinstance(tc_url, str) else "", description)
            )
        elif code == commands.PUBLISH_START and self._phase is _Phase.PUBLISH_REQUESTED:
            self._phase = _Phase.PUBLISHING
            self._out.emit(PublishStarted(self.stream_id))
        elif level == "error" and self._phase is not _Phase.FINISHED:
            self._fail(code, description)

    def _fail(self, code: str, description: str) -> None:
        self._phase = _Phase.FINISHED
        self._out.emit(PublishFailed(code, description))
        self._out.closed = True

    # ------------------------------------------------------------------ outgoing

    def _require_publishing(self) -> None:
        if self._phase is not _Phase.PUBLISHING:
            raise LocalProtocolError(f"cannot send media while {self._phase.value}")

    def send_metadata(self, metadata: Mapping[str, AmfValue]) -> None:
        self._require_publishing()
        payload = commands.set_data_frame(metadata)
        self._out.send(DATA_CSID, int(MessageType.DATA_AMF0), self.stream_id, 0, payload)

    def send_audio(self, timestamp: int, payload: bytes) -> None:
        self._require_publishing()
        self._out.send(AUDIO_CSID, int(MessageType.AUDIO), self.stream_id, timestamp, payload)

    def send_video(self, timestamp: int, payload: bytes) -> None:
        self._require_publishing()
        self._out.send(VIDEO_CSID, int(MessageType.VIDEO), self.stream_id, timestamp, payload)

    def send_prechunked(self, wire: bytes) -> None:
        self._require_publishing()
        self._out.write(wire)

    def unpublish(self) -> None:
        """FCUnpublish + deleteStream, then close (protocols.md 5.5 step 5)."""
        self._require_publishing()
        name = self._require_target().stream_name
        self._out.command(commands.fc_unpublish(_TID_FCUNPUBLISH, name))
        self._out.command(commands.delete_stream(_TID_DELETE, self.stream_id))
        self._phase = _Phase.FINISHED
        self._out.closed = True


def _code_and_description(info: AmfValue) -> tuple[str, str]:
    if not isinstance(info, dict):
        return "", ""
    code = info.get("code")
    description = info.get("description")
    return (
        code if isinstance(code, str) else "",
        description if isinstance(description, str) else "",
    )
