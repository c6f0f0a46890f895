"""Our client against our server, in memory: the whole publish life cycle."""

from __future__ import annotations

import pytest

from server.protocols.rtmp import (
    ConnectionFailed,
    ConnectRequested,
    Event,
    HandshakeComplete,
    LocalProtocolError,
    MediaReceived,
    MetadataReceived,
    PublishFailed,
    PublishRequested,
    PublishStarted,
    ReconnectRequested,
    Role,
    RtmpConnection,
    RtmpLimits,
    Unpublished,
    commands,
    messages,
)
from server.protocols.rtmp.chunk import encode_message
from server.protocols.rtmp.messages import MessageType

from .helpers import Pair, cmd, command_of, parse_output

# Against the compiled modules and their pure-Python twins (tests/accel_twins.py).
pytestmark = pytest.mark.usefixtures("implementation")


def test_publish_handshake_connect_and_start() -> None:
    pair = Pair()
    pair.start("key?t=1", fourcc_list=["hvc1", "av01"])
    assert pair.client_events == [HandshakeComplete(), PublishStarted(1)]
    assert [type(e) for e in pair.server_events] == [
        HandshakeComplete,
        ConnectRequested,
        PublishRequested,
    ]
    connect = pair.server_events[1]
    assert isinstance(connect, ConnectRequested)
    assert connect.properties["fourCcList"] == ["hvc1", "av01"]
    assert connect.properties["flashVer"] == "FMLE/3.0 (compatible; FMSc/1.0)"
    assert pair.server_events[2] == PublishRequested(1, "key?t=1", "live", "live")
    assert pair.client.stream_id == 1


def test_client_command_sequence_on_the_wire() -> None:
    pair = Pair()
    pair.start()
    wire = b"".join(pair.to_server)[1 + 2 * 1536 :]  # after C0+C1+C2
    msgs = parse_output(wire)
    assert [m.type_id for m in msgs if m.type_id != 20] == [1, 5]  # chunk size, window answer
    assert msgs[0].type_id == MessageType.SET_CHUNK_SIZE
    assert messages.parse_u32(msgs[0].payload, "") == 4096
    sent = [
        (command_of(m).name, command_of(m).transaction_id, m.stream_id)
        for m in msgs
        if m.type_id == 20
    ]
    assert sent == [
        ("connect", 1.0, 0),
        ("releaseStream", 2.0, 0),
        ("FCPublish", 3.0, 0),
        ("createStream", 4.0, 0),
        ("publish", 5.0, 1),
    ]


@pytest.mark.parametrize(
    "timestamps",
    [
        [0, 33, 66, 100],
        [0xFFFFF0, 0xFFFFFF, 0x1000000, 0x1000021],  # across the extended-timestamp boundary
        [0xFFFFFFC0, 0xFFFFFFE0, 0x1_0000_0000, 0x1_0000_0020],  # across the 32-bit wrap
    ],
)
def test_media_arrives_identically(timestamps: list[int]) -> None:
    pair = Pair()
    pair.start()
    pair.client.send_metadata({"width": 1920, "height": 1080, "encoder": "relaycast"})
    sent: list[Event] = [
        MetadataReceived(1, {"width": 1920.0, "height": 1080.0, "encoder": "relaycast"})
    ]
    for i, ts in enumerate(timestamps):
        video = bytes([0x17 if i == 0 else 0x27, 1]) + bytes(range(256)) * (20 + i * 30)
        audio = b"\xaf\x01" + bytes([i]) * 300
        pair.client.send_video(ts, video)
        pair.client.send_audio(ts + 5, audio)
        sent += [MediaReceived("video", ts, 1, video), MediaReceived("audio", ts + 5, 1, audio)]
    before = len(pair.server_events)
    pair.pump()
    assert pair.server_events[before:] == sent


def test_byte_at_a_time_both_directions_gives_the_same_events() -> None:
    def session(step: int) -> tuple[list[Event], list[Event]]:
        pair = Pair(server_limits=RtmpLimits(ack_window=3000))
        pair.start(step=step)
        pair.client.send_metadata({"duration": 0})
        for i in range(4):
            pair.client.send_video(0xFFFFF0 + 40 * i, bytes([i]) * 5000)
            pair.client.send_audio(0xFFFFF0 + 40 * i, b"\xaf\x01" + bytes(i))
        pair.pump(step=step)
        pair.client.unpublish()
        pair.pump(step=step)
        return pair.client_events, pair.server_events

    whole = session(0)
    assert len(whole[1]) == 4 + 8 + 1
    assert session(1) == whole
    assert session(5) == whole


def test_prechunked_media() -> None:
    pair = Pair()
    pair.start()
    payload = b"\x27\x01" + bytes(10_000)
    wire = encode_message(6, 9, pair.client.stream_id, 1234, payload, pair.client.out_chunk_size)
    pair.client.send_prechunked(wire)
    pair.client.send_prechunked(wire)
    pair.pump()
    assert pair.server_events[-2:] == [MediaReceived("video", 1234, 1, payload)] * 2


def test_unpublish() -> None:
    pair = Pair()
    pair.start()
    pair.client.unpublish()
    assert pair.client.closed
    pair.pump()
    assert pair.server_events[-1] == Unpublished(1)
    with pytest.raises(LocalProtocolError):
        pair.client.send_video(0, b"")


def reject_publish(conn: RtmpConnection, events: list[Event]) -> None:
    for ev in events:
        if isinstance(ev, ConnectRequested):
            conn.accept_connect()
        elif isinstance(ev, PublishRequested):
            conn.reject_publish(ev.stream_id, description=f"{ev.name} is already publishing")


def test_publish_rejected_with_bad_name() -> None:
    pair = Pair(decide=reject_publish)
    pair.start("busy")
    assert pair.client_events[-1] == PublishFailed(
        "NetStream.Publish.BadName", "busy is already publishing"
    )
    assert pair.client.closed and pair.server.closed


def test_connect_rejected() -> None:
    def reject(conn: RtmpConnection, events: list[Event]) -> None:
        for ev in events:
            if isinstance(ev, ConnectRequested):
                conn.reject_connect("unknown application")

    pair = Pair(decide=reject)
    pair.start()
    assert pair.client_events[-1] == PublishFailed(
        "NetConnection.Connect.Rejected", "unknown application"
    )
    assert pair.client.closed


def test_client_acknowledges_and_server_acknowledges() -> None:
    """The server announces a small window via Set Peer Bandwidth; our client answers
    with Window Ack Size, so the server acknowledges the client's media."""
    pair = Pair(server_limits=RtmpLimits(ack_window=10_000))
    pair.start()
    for i in range(10):
        pair.client.send_video(i * 33, bytes(4000))
        pair.pump()
    down = b"".join(pair.to_client)[1 + 2 * 1536 :]
    acks = [m for m in parse_output(down) if m.type_id == MessageType.ACKNOWLEDGEMENT]
    assert len(acks) >= 3


def fake_server_bytes(client: RtmpConnection, *payloads: tuple[int, bytes, int]) -> None:
    """Feed messages to a client as if its server (which announced 4096) sent them."""
    for type_id, payload, msid in payloads:
        client.receive_data(encode_message(3, type_id, msid, 0, payload, 4096), 0.0)


def test_client_answers_ping_and_unknown_calls_and_reconnect_request() -> None:
    pair = Pair()
    pair.start()
    client = pair.client
    ping = messages.user_control(messages.UserControlEvent.PING_REQUEST, 77)
    reconnect = commands.on_status(
        commands.status_info(
            "status", commands.RECONNECT_REQUEST, "maintenance", tcUrl="rtmp://b/live"
        )
    )
    fake_server_bytes(
        client,
        (MessageType.USER_CONTROL, ping, 0),
        (MessageType.COMMAND_AMF0, cmd("_checkbw", 9, None), 0),
        (MessageType.COMMAND_AMF0, cmd("onBWDone", 0, None), 0),
        (MessageType.COMMAND_AMF0, reconnect, 0),
    )
    out = parse_output(client.data_to_send(), _reader_at(4096))
    assert [m.type_id for m in out] == [4, 20]
    assert messages.parse_user_control(out[0].payload) == messages.UserControl(7, (77,))
    assert command_of(out[1]).transaction_id == 9.0
    assert client.events() == [ReconnectRequested("rtmp://b/live", "maintenance")]


def _reader_at(size: int):  # type: ignore[no-untyped-def]
    from .helpers import new_reader

    reader = new_reader()
    reader.set_chunk_size(size)
    return reader


def test_level_error_after_start_fails_the_publish() -> None:
    pair = Pair()
    pair.start()
    failure = commands.on_status(commands.status_info("error", "NetStream.Publish.Denied", "bye"))
    fake_server_bytes(pair.client, (MessageType.COMMAND_AMF0, failure, 1))
    assert pair.client.events() == [PublishFailed("NetStream.Publish.Denied", "bye")]
    assert pair.client.closed


def test_create_stream_error_fails_but_late_errors_do_not() -> None:
    client = RtmpConnection(Role.CLIENT)
    client.start("live", "rtmp://x/live", "k")
    c0c1 = client.data_to_send()
    client.receive_data(b"\x03" + bytes(1536) + c0c1[1:], 0.0)  # S0 S1 S2
    fake = parse_output(client.data_to_send()[1536:])
    assert command_of(fake[-1]).name == "connect"
    ok = commands.connect_result(1)
    client.receive_data(encode_message(3, 20, 0, 0, ok, 128), 0.0)
    names = [command_of(m).name for m in parse_output(client.data_to_send(), _reader_at(4096))]
    assert names == ["releaseStream", "FCPublish", "createStream"]
    late = commands.error(2, None, commands.status_info("error", "NetConnection.Call.Failed", "?"))
    client.receive_data(encode_message(3, 20, 0, 0, late, 128), 0.0)  # releaseStream refused
    assert client.events() == [HandshakeComplete()]
    refused = commands.error(
        4, None, commands.status_info("error", "NetConnection.Call.Failed", "no")
    )
    client.receive_data(encode_message(3, 20, 0, 0, refused, 128), 0.0)
    assert client.events() == [PublishFailed("NetConnection.Call.Failed", "no")]
    assert client.closed


def test_client_idle_timeout_only_until_publish_starts() -> None:
    client = RtmpConnection(Role.CLIENT, now=0.0)
    client.start("live", "rtmp://x/live", "k")
    assert client.next_timer() == 10.0  # handshake first
    pair = Pair(now=0.0)
    pair.start()
    assert pair.client.next_timer() is None  # publishing: a silent server is fine
    assert pair.server.next_timer() == 30.0
    waiting = Pair(decide=lambda conn, events: None)  # the server never answers connect
    waiting.start()
    assert waiting.client.next_timer() == 30.0
    waiting.client.handle_timer(30.0)
    (ev,) = waiting.client.events()
    assert isinstance(ev, ConnectionFailed)


def test_client_api_misuse() -> None:
    client = RtmpConnection(Role.CLIENT)
    with pytest.raises(LocalProtocolError):
        client.send_audio(0, b"")
    with pytest.raises(LocalProtocolError):
        client.accept_connect()
    client.start("a", "b", "c")
    with pytest.raises(LocalProtocolError):
        client.start("a", "b", "c")
    with pytest.raises(LocalProtocolError):
        client.unpublish()


def test_role_calls_refuse_the_other_role_and_a_finished_connection() -> None:
    """A server call on a client (or the reverse), or any call once the connection is
    finished, is our own misuse: LocalProtocolError naming it, nothing queued."""
    client = RtmpConnection(Role.CLIENT)
    with pytest.raises(LocalProtocolError, match="only a server-role connection"):
        client.accept_publish(1)
    server = RtmpConnection(Role.SERVER)
    with pytest.raises(LocalProtocolError, match="only a client-role connection"):
        server.send_audio(0, b"\xaf\x01")
    server.release()
    client.release()
    with pytest.raises(LocalProtocolError, match="connection is closed"):
        server.reject_connect("late")
    with pytest.raises(LocalProtocolError, match="connection is closed"):
        client.unpublish()
    assert server.data_to_send() == b"" and client.data_to_send() == b""
