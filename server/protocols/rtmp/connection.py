"""RtmpConnection: the sans-IO state machine for one RTMP connection, either role.

It composes the handshake, the chunk reader, protocol control handling (flow
control, pings) and a role session (:mod:`server_session` / :mod:`client_session`).
The caller feeds bytes and the current time, then drains ``events()`` and
``data_to_send()`` and re-arms one timer from ``next_timer()``; see the package
docstring for the whole contract.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import Final, TypeVar

from .amf0 import AmfValue
from .budget import ByteBudget
from .chunk import ChunkReader, Message
from .client_session import ClientSession
from .errors import LocalProtocolError, ProtocolError
from .events import ConnectionFailed, Event, HandshakeComplete, PeerClosed
from .handshake import Handshake
from .limits import RtmpLimits
from .messages import (
    AggregatePart,
    MessageType,
    UserControlEvent,
    acknowledgement,
    parse_set_peer_bandwidth,
    parse_u32,
    parse_user_control,
    split_aggregate,
    window_ack_size,
)
from .outbox import Outbox
from .server_session import ServerSession

_Session = TypeVar("_Session", ServerSession, ClientSession)

_MAX_CONTROL_TYPE: Final = int(MessageType.SET_PEER_BANDWIDTH)
_AGGREGATE: Final = int(MessageType.AGGREGATE)
_AGGREGATED_TYPES: Final = frozenset(
    int(t) for t in (MessageType.AUDIO, MessageType.VIDEO, MessageType.DATA_AMF0)
)
_MASK32: Final = 0xFFFFFFFF


class Role(Enum):
    """Which side of the connection we are."""

    SERVER = "server"
    CLIENT = "client"


class RtmpConnection:
    """One RTMP connection. Never raises for peer input: violations become
    ``ConnectionFailed`` and set ``closed``."""

    def __init__(
        self,
        role: Role,
        limits: RtmpLimits | None = None,
        now: float = 0.0,
        *,
        handshake_random: bytes | None = None,
        budget: ByteBudget | None = None,
    ) -> None:
        """``budget``: shared by the connections of a process to bound the bytes they
        hold in unfinished messages all together (see :mod:`budget`)."""
        self.role = role
        self.limits = limits if limits is not None else RtmpLimits()
        self._out = Outbox()
        self._handshake: Handshake | None = Handshake(
            role is Role.SERVER, random_bytes=handshake_random
        )
        limits = self.limits
        self._reader = ChunkReader(
            max_message_size=limits.max_message_size,
            max_chunk_size=limits.max_chunk_size,
            max_chunk_streams=limits.max_chunk_streams,
            # A server holds little for a peer that has not published yet.
            max_partial_bytes=limits.max_partial_bytes
            if role is Role.CLIENT
            else min(limits.max_partial_bytes, limits.max_unpublished_bytes),
            budget=budget,
            guaranteed_bytes=0 if role is Role.CLIENT else limits.max_unpublished_bytes,
        )
        self._created_at = now
        self._last_received_at = now
        self._bytes_received = 0
        self._bytes_sent = 0
        self._acked = 0  # bytes_received value of our last Acknowledgement
        self._peer_window = 0  # peer's Window Ack Size; 0 = it asked for none
        self._announced_window: int | None = None
        self._server = ServerSession(self._out, self.limits) if role is Role.SERVER else None
        self._client = ClientSession(self._out, self.limits) if role is Role.CLIENT else None
        session = self._server or self._client
        assert session is not None
        self._session_message: Callable[[Message], None] = session.on_message

    # ------------------------------------------------------------------ status

    @property
    def closed(self) -> bool:
        """True once the connection is finished: flush ``data_to_send()``, then close."""
        return self._out.closed

    @property
    def buffered(self) -> int:
        """Bytes reserved for messages still being received (for metrics and tests)."""
        return self._reader.reserved

    @property
    def bytes_received(self) -> int:
        return self._bytes_received

    @property
    def bytes_sent(self) -> int:
        """Bytes handed out by ``data_to_send()`` so far."""
        return self._bytes_sent

    @property
    def out_chunk_size(self) -> int:
        """Chunk size to use with :func:`chunk.encode_message` for ``send_prechunked``."""
        return self._out.chunk_size

    @property
    def stream_id(self) -> int:
        """Client role: the message stream we publish on (0 before createStream answers)."""
        return self._client.stream_id if self._client is not None else 0

    @property
    def dropped_messages(self) -> int:
        """Server role: media/data messages on streams that were not publishing."""
        return self._server.dropped_messages if self._server is not None else 0

    # ------------------------------------------------------------------ I/O

    def receive_data(self, data: bytes | bytearray | memoryview, now: float) -> None:
        """Feed bytes from the peer; ``b""`` means end of stream. Never raises for
        anything the peer sent."""
        if self._out.closed:
            return
        self._last_received_at = now
        if not data:
            self._out.emit(PeerClosed())
            self._out.closed = True
            return
        chunk = data if isinstance(data, bytes) else bytes(data)
        self._bytes_received += len(chunk)
        try:
            self._feed(chunk)
            if self._peer_window:
                self._maybe_acknowledge()
        except ProtocolError as exc:
            self._fail(str(exc))

    # events() and data_to_send() run after every read: they check before calling, so
    # the common case (media events, nothing to send) costs no extra calls.

    def events(self) -> list[Event]:
        """Drain the events produced so far, oldest first."""
        out = self._out
        return out.drain_events() if out.events else []

    def data_to_send(self) -> bytes:
        """Drain the bytes to write to the transport. Bounding them is the caller's
        job: stop reading from the peer (or drop media) while the transport is full."""
        if not self._out.pending:
            return b""
        data = self._out.drain_data()
        self._bytes_sent += len(data)
        return data

    def next_timer(self) -> float | None:
        """Absolute time at which ``handle_timer`` must be called, or None."""
        if self._out.closed:
            return None
        # called after every read: no temporary list, no min() (it shows in profiles)
        idle = (
            self._last_received_at + self.limits.idle_timeout
            if self._idle_timeout_applies()
            else None
        )
        if not self._admitting():
            return idle
        handshake = self._created_at + self.limits.handshake_timeout
        return handshake if idle is None or handshake < idle else idle

    def handle_timer(self, now: float) -> None:
        """Fail the connection if the handshake (server role: through the accepted
        publish) or the peer's silence took too long."""
        if self._out.closed:
            return
        timeout = self.limits.handshake_timeout
        if self._admitting() and now >= self._created_at + timeout:
            if self._handshake is not None:
                self._fail(f"handshake not completed within {timeout:g} s")
            else:
                self._fail(f"not published within {timeout:g} s of connecting")
        elif (
            self._idle_timeout_applies()
            and now >= self._last_received_at + self.limits.idle_timeout
        ):
            self._fail(f"no data from peer for {self.limits.idle_timeout:g} s")

    def _admitting(self) -> bool:
        """True while the handshake deadline runs: the byte handshake, and for a
        server everything up to an accepted publish (any byte resets the idle timer,
        so only this deadline stops a peer that never publishes)."""
        server = self._server
        return self._handshake is not None or (server is not None and not server.published)

    def _idle_timeout_applies(self) -> bool:
        """A player owes us nothing once playing (acknowledgements are optional, and
        a quiet one is bounded by the application's stall timeout on its writes)."""
        if self._client is not None:
            return self._client.waiting_for_server
        return self._server is None or not self._server.playing

    def close(self, description: str | None = None) -> None:
        """Finish the connection (idempotent). Server role: with a description, a
        connected peer first gets ``onStatus NetConnection.Connect.Closed``."""
        if self._out.closed:
            return
        if self._server is not None:
            self._server.close(description)
        self._out.closed = True

    def release(self) -> None:
        """Drop what a finished connection still holds (unfinished and deferred
        messages) and return its share of the shared budget. Call once it is closed
        or abandoned; idempotent."""
        self._out.closed = True
        self._reader.release()
        if self._server is not None:
            self._server.release()

    # ------------------------------------------------------------------ server role

    def accept_connect(self, extra_properties: Mapping[str, AmfValue] | None = None) -> None:
        """Answer ``ConnectRequested`` positively; ``extra_properties`` go into the
        ``_result`` properties (e.g. an E-RTMP ``fourCcList`` echo)."""
        server = self._require_server()
        if not server.connect_pending:
            raise LocalProtocolError("no connect is waiting for a decision")
        self._announced_window = self.limits.ack_window
        self._guarded(lambda: server.accept_connect(extra_properties))

    def reject_connect(
        self, description: str, code: str = "NetConnection.Connect.Rejected"
    ) -> None:
        """Answer ``ConnectRequested`` with ``_error`` and close."""
        self._require_server().reject_connect(description, code)

    def accept_publish(self, stream_id: int) -> None:
        """Answer ``PublishRequested``: StreamBegin + onStatus NetStream.Publish.Start."""
        server = self._require_server()
        self._reader.max_partial_bytes = self.limits.max_partial_bytes
        self._guarded(lambda: server.accept_publish(stream_id))

    def reject_publish(
        self,
        stream_id: int,
        code: str = "NetStream.Publish.BadName",
        description: str = "",
    ) -> None:
        """Answer ``PublishRequested`` with a level-"error" onStatus and close."""
        self._require_server().reject_publish(stream_id, code, description)

    def accept_play(self, stream_id: int) -> None:
        """Answer ``PlayRequested``: StreamBegin, Play.Reset, Play.Start; then send the
        stream with ``send_play_metadata`` and ``send_prechunked`` on ``stream_id``."""
        server = self._require_server()
        self._guarded(lambda: server.accept_play(stream_id))

    def reject_play(
        self, stream_id: int, code: str = "NetStream.Play.Failed", description: str = ""
    ) -> None:
        """Answer ``PlayRequested`` with a level-"error" onStatus and close."""
        self._require_server().reject_play(stream_id, code, description)

    def send_play_metadata(self, stream_id: int, metadata: Mapping[str, AmfValue]) -> None:
        """``onMetaData`` to a player on its accepted ``stream_id``."""
        self._require_server().send_play_metadata(stream_id, metadata)

    def end_play(self, stream_id: int, description: str) -> None:
        """Tell a player its stream ended (UnpublishNotify, Play.Stop, StreamEOF)."""
        self._require_server().end_play(stream_id, description)

    @property
    def playing(self) -> bool:
        """Server role: a play was accepted on this connection."""
        return self._server is not None and self._server.playing

    def _require_server(self) -> ServerSession:
        return self._require_open(self._server, "server")

    # ------------------------------------------------------------------ client role

    def start(
        self,
        app: str,
        tc_url: str,
        stream_name: str,
        *,
        fourcc_list: Sequence[str] | None = None,
        extra_properties: Mapping[str, AmfValue] | None = None,
    ) -> None:
        """Begin publishing ``stream_name``: queues C0+C1; the rest runs by itself and
        ends in ``PublishStarted`` or ``PublishFailed``."""
        client = self._require_client()
        handshake = self._handshake
        if handshake is None:
            raise LocalProtocolError("start() must come before any data from the peer")
        client.start(app, tc_url, stream_name, fourcc_list, extra_properties)
        handshake.initiate()
        self._out.write(handshake.data_to_send())

    def send_metadata(self, metadata: Mapping[str, AmfValue]) -> None:
        """``@setDataFrame onMetaData`` with ``metadata`` as an ECMA array."""
        self._require_client().send_metadata(metadata)

    def send_audio(self, timestamp: int, payload: bytes) -> None:
        """An audio message (FLV tag body); ``timestamp`` in ms, sent mod 2**32."""
        self._require_client().send_audio(timestamp, payload)

    def send_video(self, timestamp: int, payload: bytes) -> None:
        """A video message (FLV tag body); ``timestamp`` in ms, sent mod 2**32."""
        self._require_client().send_video(timestamp, payload)

    def send_prechunked(self, wire: bytes) -> None:
        """Queue bytes from :func:`chunk.encode_message` built with ``out_chunk_size``
        and ``stream_id`` (cheap fan-out of one message to many connections); server
        role: to a player, on the stream id its play was accepted on."""
        if self._server is not None:
            self._require_server()
            if not self._server.playing:
                raise LocalProtocolError("no play was accepted on this connection")
            self._out.write(wire)
            return
        self._require_client().send_prechunked(wire)

    def unpublish(self) -> None:
        """FCUnpublish + deleteStream, then the connection is closed."""
        self._require_client().unpublish()

    def _require_client(self) -> ClientSession:
        return self._require_open(self._client, "client")

    def _require_open(self, session: _Session | None, role: str) -> _Session:
        """``session`` when this connection has that role and is still open; else
        our caller misused the API (not the peer's fault)."""
        if session is None:
            raise LocalProtocolError(f"only a {role}-role connection can do this")
        if self._out.closed:
            raise LocalProtocolError("connection is closed")
        return session

    # ------------------------------------------------------------------ internals

    def _fail(self, reason: str) -> None:
        if not self._out.closed:
            self._out.emit(ConnectionFailed(reason))
            self._out.closed = True

    def _guarded(self, action: Callable[[], None]) -> None:
        """Run an API action that may replay deferred peer messages; a peer violation
        found while replaying fails the connection instead of raising into the app."""
        try:
            action()
        except ProtocolError as exc:
            self._fail(str(exc))

    def _feed(self, data: bytes) -> None:
        handshake = self._handshake
        if handshake is not None:
            data = handshake.receive(data)
            self._out.write(handshake.data_to_send())
            if not handshake.done:
                return
            self._handshake = None
            self._out.emit(HandshakeComplete())
            if self._client is not None:
                self._client.on_handshake_complete()
            if not data:
                return
        messages: list[Message] = []
        error: ProtocolError | None = None
        try:
            self._reader.feed(data, messages)
        except ProtocolError as exc:  # deliver what completed before the violation
            error = exc
        out = self._out
        session_message = self._session_message
        for message in messages:
            type_id = message.type_id
            if type_id > _MAX_CONTROL_TYPE and type_id != _AGGREGATE:
                session_message(message)  # media and commands: skip _dispatch
            else:
                self._dispatch(message)
            if out.closed:
                return
        if error is not None:
            raise error

    def _dispatch(self, msg: Message) -> None:
        type_id = msg.type_id
        if type_id <= _MAX_CONTROL_TYPE:
            self._control(msg)
        elif type_id == _AGGREGATE:
            for part in split_aggregate(msg.payload, msg.timestamp):
                if part.type_id in _AGGREGATED_TYPES:
                    self._session_message(_sub_message(msg, part))
        else:
            self._session_message(msg)

    def _control(self, msg: Message) -> None:
        """Types 1-6. Set Chunk Size and Abort were applied by the reader already."""
        type_id = msg.type_id
        if type_id == MessageType.USER_CONTROL:
            control = parse_user_control(msg.payload)
            if control.event == UserControlEvent.PING_REQUEST:
                self._out.user_control(UserControlEvent.PING_RESPONSE, control.values[0])
        elif type_id == MessageType.WINDOW_ACK_SIZE:
            self._peer_window = parse_u32(msg.payload, "Window Acknowledgement Size")
        elif type_id == MessageType.SET_PEER_BANDWIDTH:
            window, _limit = parse_set_peer_bandwidth(msg.payload)
            if window != self._announced_window:
                self._announced_window = window
                self._out.control(MessageType.WINDOW_ACK_SIZE, window_ack_size(window))

    def _maybe_acknowledge(self) -> None:
        """Acknowledge whenever a full peer window arrived since the last one (once per
        feed, not per chunk; the value is the byte count mod 2**32)."""
        window = self._peer_window
        if window and self._bytes_received - self._acked >= window and not self._out.closed:
            self._acked = self._bytes_received
            payload = acknowledgement(self._bytes_received & _MASK32)
            self._out.control(MessageType.ACKNOWLEDGEMENT, payload)


def _sub_message(aggregate: Message, part: AggregatePart) -> Message:
    return Message(aggregate.csid, part.type_id, aggregate.stream_id, part.timestamp, part.payload)
