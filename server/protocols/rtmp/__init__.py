"""Sans-IO RTMP: server role (accepts publishers) and client role (publishes elsewhere).

Nothing here does I/O or reads a clock: the caller feeds bytes and ``now`` (seconds,
any monotonic origin) and drains events and output. Modules follow the spec's split:
:mod:`handshake` (5.1), :mod:`chunk` (5.2), :mod:`messages` (5.3 control messages,
aggregates, timestamp unwrapping), :mod:`amf0`, :mod:`commands` (5.4/5.5 commands),
:mod:`server_session` / :mod:`client_session` (the two command sequences),
:mod:`connection` (the composed state machine), :mod:`events`, :mod:`errors`,
:mod:`limits`.

Contract of :class:`RtmpConnection`::

    conn = RtmpConnection(Role.SERVER | Role.CLIENT, limits=RtmpLimits(), now=t0)
    conn.receive_data(data, now)    # b"" = peer closed; never raises for peer input:
                                    # a violation emits ConnectionFailed and sets closed
    conn.events() -> list[Event]    # drain after every call
    conn.data_to_send() -> bytes    # drain and write; bounding the transport buffer
                                    # (pause reading / drop media) is the caller's job
    conn.next_timer() -> float | None ; conn.handle_timer(now)
    conn.closed                     # once true: flush data_to_send(), then close the socket
    conn.release()                  # after closing: drop unfinished messages, return budget
    conn.close(description=None)    # idempotent

    # server role: the application decides, possibly later (messages arriving in
    # between are deferred, bounded, and replayed after the decision -- so the
    # decision calls may themselves produce events)
    ConnectRequested(app, tc_url, properties)
        -> conn.accept_connect(extra_properties=None) | conn.reject_connect(description, code=...)
    PublishRequested(stream_id, name, publish_type, app)
        -> conn.accept_publish(stream_id)
         | conn.reject_publish(stream_id, code="NetStream.Publish.BadName", description="")
    then MediaReceived(kind, timestamp, stream_id, payload), MetadataReceived(stream_id,
    metadata), Unpublished(stream_id)
    PlayRequested(stream_id, name, app)
        -> conn.accept_play(stream_id) (then conn.send_play_metadata / send_prechunked on
           that stream id) | conn.reject_play(stream_id, code, description)
    then PlayStopped(stream_id) when the player deletes its stream

    # client role
    conn.start(app, tc_url, stream_name, *, fourcc_list=None, extra_properties=None)
        -> HandshakeComplete, then PublishStarted(stream_id) | PublishFailed(code, description)
    conn.send_metadata(dict); conn.send_audio(ts_ms, payload); conn.send_video(ts_ms, payload)
    conn.send_prechunked(chunk.encode_message(csid, type, conn.stream_id, ts, payload,
                                              conn.out_chunk_size))
    conn.unpublish()                # FCUnpublish + deleteStream, then closed

Timeouts: ``handshake_timeout`` from construction until the byte handshake is done
(server role: until a publish is accepted);
``idle_timeout`` since the last byte from the peer (server role always, client role
until PublishStarted). Timestamps in events are unwrapped past 2**32 ms per
(stream, type); outgoing timestamps are sent mod 2**32.
Errors: :class:`ProtocolError` is the peer's fault (only ever raised by the parser
functions, converted to ``ConnectionFailed`` by the connection);
:class:`LocalProtocolError` / ``ValueError`` / ``TypeError`` are our own misuse.
"""

from .budget import ByteBudget
from .chunk import Message, encode_message
from .connection import Role, RtmpConnection
from .errors import LocalProtocolError, ProtocolError
from .events import (
    ConnectionFailed,
    ConnectRequested,
    Event,
    HandshakeComplete,
    MediaKind,
    MediaReceived,
    MetadataReceived,
    PeerClosed,
    PlayRequested,
    PlayStopped,
    PublishFailed,
    PublishRequested,
    PublishStarted,
    ReconnectRequested,
    Unpublished,
)
from .limits import RtmpLimits

__all__ = [
    "ByteBudget",
    "ConnectRequested",
    "ConnectionFailed",
    "Event",
    "HandshakeComplete",
    "LocalProtocolError",
    "MediaKind",
    "MediaReceived",
    "Message",
    "MetadataReceived",
    "PeerClosed",
    "PlayRequested",
    "PlayStopped",
    "ProtocolError",
    "PublishFailed",
    "PublishRequested",
    "PublishStarted",
    "ReconnectRequested",
    "Role",
    "RtmpConnection",
    "RtmpLimits",
    "Unpublished",
    "encode_message",
]
