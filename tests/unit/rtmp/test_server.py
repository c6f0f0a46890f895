"""Server role driven by a hand-written publisher: the exact answer sequence of 5.4,
rtmp2sink quirks, flow control, timers, deferral and failure handling."""

from __future__ import annotations

import itertools
import struct

import pytest

from server.protocols.rtmp import (
    ByteBudget,
    ConnectionFailed,
    ConnectRequested,
    HandshakeComplete,
    LocalProtocolError,
    MediaReceived,
    MetadataReceived,
    PeerClosed,
    PlayRequested,
    PlayStopped,
    PublishRequested,
    Role,
    RtmpConnection,
    RtmpLimits,
    Unpublished,
    amf0,
    commands,
    messages,
)
from server.protocols.rtmp.amf0 import UNDEFINED
from server.protocols.rtmp.chunk import encode_header, encode_message
from server.protocols.rtmp.messages import MessageType

from .helpers import C0C1, C2, FakeClient, cmd, command_of, status_code

# Against the compiled modules and their pure-Python twins (tests/accel_twins.py).
pytestmark = pytest.mark.usefixtures("implementation")


def connected(
    limits: RtmpLimits | None = None, now: float = 0.0, budget: ByteBudget | None = None
) -> tuple[RtmpConnection, FakeClient]:
    server = RtmpConnection(Role.SERVER, limits, now, budget=budget)
    client = FakeClient(server, now)
    client.handshake()
    client.connect()
    server.accept_connect()
    server.events()
    client.received()
    return server, client


def publishing(key: str = "key", **kwargs: object) -> tuple[RtmpConnection, FakeClient]:
    server, client = connected(**kwargs)  # type: ignore[arg-type]
    client.publish_sequence(key)
    (request,) = [e for e in server.events() if isinstance(e, PublishRequested)]
    server.accept_publish(request.stream_id)
    client.received()
    return server, client


def test_connect_answer_sequence() -> None:
    server = RtmpConnection(Role.SERVER)
    client = FakeClient(server)
    client.handshake()
    assert server.events() == [HandshakeComplete()]
    client.connect(fourCcList=["hvc1"], capsEx=2)
    (ev,) = server.events()
    assert isinstance(ev, ConnectRequested)
    assert (ev.app, ev.tc_url) == ("live", "rtmp://127.0.0.1/live")
    assert ev.properties["fourCcList"] == ["hvc1"] and ev.properties["capsEx"] == 2.0
    assert server.data_to_send() == b""  # nothing until the application decides
    server.accept_connect()
    out = client.received()
    assert [m.type_id for m in out] == [5, 6, 4, 1, 20]
    assert messages.parse_u32(out[0].payload, "") == 2_500_000
    assert messages.parse_set_peer_bandwidth(out[1].payload) == (2_500_000, 2)
    assert messages.parse_user_control(out[2].payload) == messages.UserControl(0, (0,))
    assert messages.parse_u32(out[3].payload, "") == 4096
    result = command_of(out[4])
    assert (result.name, result.transaction_id) == ("_result", 1.0)
    assert result.command_object == {"fmsVer": "FMS/3,0,1,123", "capabilities": 31.0}
    assert result.args[0] == {
        "level": "status",
        "code": "NetConnection.Connect.Success",
        "description": "Connection succeeded.",
        "objectEncoding": 0.0,
    }
    assert all(m.stream_id == 0 for m in out)


def test_publish_sequence_answers() -> None:
    server, client = connected()
    client.command("releaseStream", 2, None, "key")
    client.command("FCPublish", 3, None, "key")
    client.command("createStream", 4, None)
    out = client.received()
    release, fcpublish, created = (command_of(m) for m in out)
    assert (release.name, release.transaction_id, release.args) == ("_result", 2.0, (UNDEFINED,))
    assert fcpublish.name == "onFCPublish" and fcpublish.args[0] == {
        "code": "NetStream.Publish.Start",
        "description": "key",
    }
    assert (created.name, created.transaction_id, created.args) == ("_result", 4.0, (1.0,))
    client.command("publish", 5, None, "key?token=1", "live", msid=1)
    assert server.events() == [PublishRequested(1, "key?token=1", "live", "live")]
    server.accept_publish(1)
    begin, status = client.received()
    assert begin.type_id == 4 and messages.parse_user_control(begin.payload).values == (1,)
    on_status = command_of(status)
    assert status.stream_id == 1
    assert (on_status.name, on_status.transaction_id) == ("onStatus", 0.0)
    assert on_status.args[0] == {
        "level": "status",
        "code": "NetStream.Publish.Start",
        "description": "key?token=1 is now published",
        "details": "key?token=1",
    }


def test_media_and_metadata_flow() -> None:
    server, client = publishing()
    client.send(MessageType.DATA_AMF0, commands.set_data_frame({"width": 1280}), msid=1, csid=5)
    client.send(MessageType.VIDEO, b"\x17\x00" + bytes(500), msid=1, ts=0, csid=6)
    client.send(MessageType.AUDIO, b"\xaf\x01abc", msid=1, ts=0x1234567, csid=4)
    client.send(MessageType.DATA_AMF0, amf0.encode_values("onTextData", {"t": "x"}), msid=1, ts=9)
    client.send(
        MessageType.DATA_AMF3, b"\x00" + amf0.encode_values("onMetaData", {"h": 720}), msid=1
    )
    assert server.events() == [
        MetadataReceived(1, {"width": 1280.0}),
        MediaReceived("video", 0, 1, b"\x17\x00" + bytes(500)),
        MediaReceived("audio", 0x1234567, 1, b"\xaf\x01abc"),
        MediaReceived("data", 9, 1, amf0.encode_values("onTextData", {"t": "x"})),
        MetadataReceived(1, {"h": 720.0}),
    ]


def test_undecodable_data_message_is_passed_through() -> None:
    server, client = publishing()
    client.send(MessageType.DATA_AMF0, b"\x02\x00\x09short", msid=1)
    assert server.events() == [MediaReceived("data", 0, 1, b"\x02\x00\x09short")]
    assert not server.closed


def test_media_on_a_stream_that_is_not_publishing_is_dropped() -> None:
    server, client = connected()
    client.send(MessageType.VIDEO, b"\x17", msid=1)
    assert server.events() == []
    assert server.dropped_messages == 1


def test_rtmp2sink_style_tid_zero_and_delete_stream_with_key_string() -> None:
    server, client = connected()
    client.publish_sequence("abc", tid_zero=True)
    out = client.received()
    assert [command_of(m).name for m in out] == ["onFCPublish", "_result"]  # no answer to tid 0
    (request,) = server.events()
    assert isinstance(request, PublishRequested) and request.name == "abc"
    server.accept_publish(request.stream_id)
    client.received()
    client.command("FCUnpublish", 0, None, "abc")
    client.command("deleteStream", 0, None, "abc")
    assert server.events() == [Unpublished(1)]  # once, although both arrived
    statuses = [command_of(m) for m in client.received()]
    assert [status_code(s) for s in statuses] == ["NetStream.Unpublish.Success"]


def test_delete_stream_by_number_and_close_stream() -> None:
    server, client = publishing()
    client.command("closeStream", 0, None, msid=1)
    assert server.events() == [Unpublished(1)]
    client.command("publish", 0, None, "again", "live", msid=1)
    (request,) = server.events()
    assert isinstance(request, PublishRequested) and request.name == "again"
    server.accept_publish(1)
    client.command("deleteStream", 6, None, 1.0)
    assert server.events() == [Unpublished(1)]


def test_unknown_commands_answered_only_with_nonzero_tid() -> None:
    _server, client = connected()
    client.command("_checkbw", 7, None)
    client.command("getStreamLength", 0, None, "key")
    client.command("_result", 9, None)  # never answer an answer
    (answer,) = client.received()
    c = command_of(answer)
    assert (c.name, c.transaction_id, c.command_object, c.args) == (
        "_result",
        7.0,
        None,
        (UNDEFINED,),
    )


def playing(name: str = "edge") -> tuple[RtmpConnection, FakeClient, PlayRequested]:
    server, client = connected()
    client.command("createStream", 2, None)
    client.command("getStreamLength", 3, None, name, msid=1)
    client.command("play", 4, None, name, -2000.0, msid=1)
    (request,) = server.events()
    assert isinstance(request, PlayRequested)
    return server, client, request


def test_play_becomes_an_event_answered_as_nginx_rtmp_does() -> None:
    server, client, request = playing("edge?token=T")
    assert (request.stream_id, request.name, request.app) == (1, "edge?token=T", "live")
    _created, length = client.received()
    assert command_of(length).args == (0.0,)
    server.accept_play(1)
    begin, reset, start, access = client.received()
    assert begin.type_id == MessageType.USER_CONTROL
    assert [status_code(command_of(m)) for m in (reset, start)] == [
        "NetStream.Play.Reset",
        "NetStream.Play.Start",
    ]
    assert start.stream_id == 1
    assert amf0.decode_all(access.payload) == ["|RtmpSampleAccess", True, True]
    server.send_play_metadata(1, {"width": 640.0})
    (meta,) = client.received()
    assert amf0.decode_all(meta.payload)[0] == "onMetaData" and meta.stream_id == 1
    wire = encode_message(6, MessageType.VIDEO, 1, 40, b"\x17\x01", server.out_chunk_size)
    server.send_prechunked(wire)
    (video,) = client.received()
    assert (video.type_id, video.stream_id, video.payload) == (MessageType.VIDEO, 1, b"\x17\x01")


def test_a_refused_play_says_why_and_hangs_up() -> None:
    server, client, request = playing()
    client.received()
    server.reject_play(request.stream_id, description="this stream is private")
    (status,) = client.received()
    info = command_of(status).args[0]
    assert isinstance(info, dict)
    assert info["code"] == "NetStream.Play.Failed" and info["level"] == "error"
    assert info["description"] == "this stream is private"
    assert server.closed


def test_a_player_is_admitted_and_never_idles_out() -> None:
    server, _client, request = playing()
    server.accept_play(request.stream_id)
    assert server.playing
    assert server.next_timer() is None  # no handshake deadline, no idle deadline
    server.handle_timer(1000.0)
    assert not server.closed


def test_deleting_the_played_stream_stops_play() -> None:
    server, client, request = playing()
    server.accept_play(request.stream_id)
    client.command("deleteStream", 0, None, 1.0)
    assert server.events() == [PlayStopped(1)]


def test_end_of_play_tells_the_player() -> None:
    server, client, request = playing()
    server.accept_play(request.stream_id)
    client.received()
    server.end_play(1, "edge ended")
    unpublished, stop, eof = client.received()
    assert status_code(command_of(unpublished)) == "NetStream.Play.UnpublishNotify"
    assert status_code(command_of(stop)) == "NetStream.Play.Stop"
    assert eof.type_id == MessageType.USER_CONTROL


def test_media_cannot_be_sent_before_a_play_is_accepted() -> None:
    server, _client, _request = playing()
    with pytest.raises(LocalProtocolError):
        server.send_prechunked(b"x")


def test_ping_request_is_answered() -> None:
    _server, client = connected()
    client.send(
        MessageType.USER_CONTROL,
        messages.user_control(messages.UserControlEvent.PING_REQUEST, 0xCAFE),
        csid=2,
    )
    (pong,) = client.received()
    assert pong.type_id == 4
    assert messages.parse_user_control(pong.payload) == messages.UserControl(7, (0xCAFE,))


def test_acknowledgement_after_peer_window() -> None:
    server, client = publishing()
    assert server.bytes_received > 3073  # handshake and commands count too
    client.send(MessageType.WINDOW_ACK_SIZE, messages.window_ack_size(5000), csid=2)
    acks: list[int] = []
    for _ in range(6):
        client.send(MessageType.VIDEO, bytes(3000), msid=1, csid=6)
        for m in client.received():
            assert m.type_id == 3
            acks.append(messages.parse_u32(m.payload, ""))
            assert acks[-1] == server.bytes_received
    assert len(acks) == 3  # ~3.4 kB + 6 x 3 kB received, one ack per 5000 bytes
    assert all(b - a >= 5000 for a, b in itertools.pairwise(acks))


def test_set_peer_bandwidth_answered_when_window_changes() -> None:
    _server, client = connected()
    client.send(
        MessageType.SET_PEER_BANDWIDTH,
        messages.set_peer_bandwidth(2_500_000, messages.PeerBandwidthLimit.DYNAMIC),
        csid=2,
    )
    assert client.received() == []  # same as what we announced
    client.send(
        MessageType.SET_PEER_BANDWIDTH,
        messages.set_peer_bandwidth(1_000_000, messages.PeerBandwidthLimit.HARD),
        csid=2,
    )
    (answer,) = client.received()
    assert answer.type_id == 5 and messages.parse_u32(answer.payload, "") == 1_000_000


def test_aggregate_message_is_split() -> None:
    server, client = publishing()
    body = messages.encode_aggregate(
        [
            messages.AggregatePart(9, 1000, b"\x17\x01v"),
            messages.AggregatePart(8, 1020, b"\xaf\x01a"),
            messages.AggregatePart(4, 1020, b"ignored"),
        ]
    )
    client.send(MessageType.AGGREGATE, body, msid=1, ts=50_000, csid=6)
    assert server.events() == [
        MediaReceived("video", 50_000, 1, b"\x17\x01v"),
        MediaReceived("audio", 50_020, 1, b"\xaf\x01a"),
    ]


def test_messages_before_the_decision_are_deferred_and_replayed() -> None:
    server = RtmpConnection(Role.SERVER)
    client = FakeClient(server)
    client.handshake()
    client.connect()
    client.publish_sequence("k")  # without waiting for any answer
    client.send(MessageType.VIDEO, b"\x17\x00seq", msid=1, csid=6)
    client.send(MessageType.AUDIO, b"\xaf\x00asc", msid=1, csid=4)
    events = server.events()
    assert [type(e) for e in events] == [HandshakeComplete, ConnectRequested]
    server.accept_connect()
    (request,) = server.events()
    assert isinstance(request, PublishRequested)
    server.accept_publish(request.stream_id)
    assert server.events() == [
        MediaReceived("video", 0, 1, b"\x17\x00seq"),
        MediaReceived("audio", 0, 1, b"\xaf\x00asc"),
    ]
    names = [command_of(m).name for m in client.received() if m.type_id == 20]
    assert names == ["_result", "_result", "onFCPublish", "_result", "onStatus"]


def test_deferral_is_bounded() -> None:
    server, client = connected(RtmpLimits(max_deferred_bytes=1000))
    client.publish_sequence("k")
    server.events()
    client.send(MessageType.VIDEO, bytes(1200), msid=1, csid=6)
    (ev,) = server.events()
    assert isinstance(ev, ConnectionFailed) and "before its connect/publish" in ev.reason
    assert server.closed


def test_violation_found_while_replaying_fails_the_connection() -> None:
    server = RtmpConnection(Role.SERVER)
    client = FakeClient(server)
    client.handshake()
    client.connect()
    client.command("connect", 2, {"app": "again"})
    server.events()
    server.accept_connect()  # must not raise into the application
    (ev,) = server.events()
    assert isinstance(ev, ConnectionFailed) and "second connect" in ev.reason


def test_reject_connect() -> None:
    server = RtmpConnection(Role.SERVER)
    client = FakeClient(server)
    client.handshake()
    client.connect()
    server.events()
    server.reject_connect("bad app")
    (err,) = client.received()
    c = command_of(err)
    assert (c.name, c.transaction_id) == ("_error", 1.0)
    assert c.args[0] == {
        "level": "error",
        "code": "NetConnection.Connect.Rejected",
        "description": "bad app",
    }
    assert server.closed and server.next_timer() is None


def test_reject_publish_with_bad_name() -> None:
    server, client = connected()
    client.publish_sequence("taken")
    client.received()
    (request,) = server.events()
    assert isinstance(request, PublishRequested)
    server.reject_publish(request.stream_id, description="stream in use")
    (status,) = client.received()
    assert status.stream_id == 1
    assert command_of(status).args[0] == {
        "level": "error",
        "code": "NetStream.Publish.BadName",
        "description": "stream in use",
    }
    assert server.closed


def test_close_with_description_tells_the_peer() -> None:
    server, client = publishing()
    server.close("kicked by operator")
    (status,) = client.received()
    assert status_code(command_of(status)) == "NetConnection.Connect.Closed"
    assert server.closed
    server.close()  # idempotent
    server.receive_data(b"ignored", 5.0)
    assert server.events() == []


def test_peer_closed() -> None:
    server, _ = connected()
    server.receive_data(b"", 1.0)
    assert server.events() == [PeerClosed()]
    assert server.closed


def test_handshake_timeout() -> None:
    server = RtmpConnection(Role.SERVER, now=100.0)
    assert server.next_timer() == 110.0
    server.receive_data(C0C1[:100], 101.0)
    server.handle_timer(109.9)
    assert server.events() == []
    server.handle_timer(110.0)
    (ev,) = server.events()
    assert isinstance(ev, ConnectionFailed) and "handshake" in ev.reason
    assert server.closed and server.next_timer() is None


def test_idle_timeout() -> None:
    server, client = publishing()
    client.now = 5.0
    client.command("createStream", 4, None)
    assert server.next_timer() == 35.0
    server.handle_timer(34.9)
    assert not server.closed
    server.handle_timer(35.0)
    (ev,) = server.events()
    assert isinstance(ev, ConnectionFailed) and "no data" in ev.reason


def test_command_before_connect_fails() -> None:
    server = RtmpConnection(Role.SERVER)
    client = FakeClient(server)
    client.handshake()
    server.events()
    client.command("createStream", 4, None)
    (ev,) = server.events()
    assert isinstance(ev, ConnectionFailed) and "before connect" in ev.reason


def test_bad_handshake_version_fails() -> None:
    server = RtmpConnection(Role.SERVER)
    server.receive_data(b"\x06" + C0C1[1:], 0.0)
    (ev,) = server.events()
    assert isinstance(ev, ConnectionFailed) and "version" in ev.reason


def test_amf3_command_connect() -> None:
    server = RtmpConnection(Role.SERVER)
    client = FakeClient(server)
    client.handshake()
    server.events()
    client.send(MessageType.COMMAND_AMF3, b"\x00" + cmd("connect", 1, {"app": "a3", "tcUrl": "t"}))
    assert server.events() == [ConnectRequested("a3", "t", {"app": "a3", "tcUrl": "t"})]


def test_too_many_streams() -> None:
    server, client = connected(RtmpLimits(max_streams=2))
    for tid in (4, 5, 6):
        client.command("createStream", tid, None)
    (ev,) = server.events()
    assert isinstance(ev, ConnectionFailed) and "streams" in ev.reason


def test_api_misuse_raises_local_errors() -> None:
    server = RtmpConnection(Role.SERVER)
    with pytest.raises(LocalProtocolError):
        server.accept_connect()
    with pytest.raises(LocalProtocolError):
        server.accept_publish(1)
    with pytest.raises(LocalProtocolError):
        server.send_video(0, b"")
    with pytest.raises(LocalProtocolError):
        server.start("a", "b", "c")
    server.close()
    with pytest.raises(LocalProtocolError):
        server.reject_connect("x")


def test_one_byte_at_a_time_gives_the_same_events() -> None:
    def session_bytes() -> bytes:
        c = FakeClient(RtmpConnection(Role.SERVER))
        parts = [C0C1, C2]
        parts.append(c.wire(20, cmd("connect", 1, {"app": "live", "tcUrl": "rtmp://x/live"})))
        parts.append(c.wire(20, cmd("createStream", 4, None)))
        parts.append(c.wire(20, cmd("publish", 5, None, "key", "live"), msid=1))
        parts.append(c.wire(1, struct.pack(">I", 1000), csid=2))
        c.chunk_size = 1000
        parts.append(c.wire(18, commands.set_data_frame({"w": 1.0}), msid=1, csid=5))
        for i in range(5):
            parts.append(c.wire(9, bytes([i]) * 2500, msid=1, ts=0xFFFFF0 + i * 40, csid=6))
            parts.append(c.wire(8, b"\xaf\x01" + bytes(30), msid=1, ts=0xFFFFF0 + i * 40, csid=4))
        return b"".join(parts)

    def run(data: bytes, step: int) -> list[object]:
        server = RtmpConnection(Role.SERVER)
        events: list[object] = []
        for i in range(0, len(data), step):
            server.receive_data(data[i : i + step], 0.0)
            pending = server.events()
            while pending:  # decisions may replay deferred messages into new events
                for ev in pending:
                    events.append(ev)
                    if isinstance(ev, ConnectRequested):
                        server.accept_connect()
                    elif isinstance(ev, PublishRequested):
                        server.accept_publish(ev.stream_id)
                pending = server.events()
        return events

    data = session_bytes()
    whole = run(data, len(data))
    assert len([e for e in whole if isinstance(e, MediaReceived)]) == 10
    assert whole[-1] == MediaReceived("audio", 0xFFFFF0 + 160, 1, b"\xaf\x01" + bytes(30))
    assert run(data, 1) == whole
    assert run(data, 7) == whole


def test_handshake_timeout_runs_until_a_publish_is_accepted() -> None:
    """Any byte resets the idle timer, so only this deadline stops a peer that keeps
    sending a byte now and then and never publishes."""
    server, client = connected(now=0.0)
    client.now = 9.0
    client.command("createStream", 4, None)
    assert server.next_timer() == 10.0
    server.handle_timer(10.0)
    (ev,) = server.events()
    assert isinstance(ev, ConnectionFailed) and "not published within 10 s" in ev.reason


def test_an_accepted_publish_ends_the_handshake_deadline() -> None:
    server, client = publishing()
    client.now = 9.0
    client.command("createStream", 4, None)
    assert server.next_timer() == 39.0
    server.handle_timer(10.0)
    assert not server.closed


def test_before_publish_a_connection_holds_little() -> None:
    """A peer that has not published may not start a message over max_unpublished_bytes
    (a connect is not even needed to try); once publishing, max_partial_bytes applies."""
    limits = RtmpLimits(max_unpublished_bytes=4096)
    server = RtmpConnection(Role.SERVER, limits)
    client = FakeClient(server)
    client.handshake()
    server.receive_data(encode_header(0, 6, 0, 5000, 9, 1) + bytes(100), 0.0)
    (ev,) = [e for e in server.events() if isinstance(e, ConnectionFailed)]
    assert "4096 bytes in partially received messages" in ev.reason

    server, client = publishing(limits=limits)
    server.receive_data(encode_header(0, 6, 0, 500_000, 9, 1) + bytes(100), 0.0)
    assert not server.closed and server.buffered == 500_000


def test_deferred_bytes_before_publish_are_held_to_the_small_bound() -> None:
    server, client = connected(RtmpLimits(max_unpublished_bytes=4096))
    client.publish_sequence("k")
    server.events()
    client.send(MessageType.VIDEO, bytes(3000), msid=1, csid=6)
    client.send(MessageType.VIDEO, bytes(3000), msid=1, csid=6)
    (ev,) = server.events()
    assert isinstance(ev, ConnectionFailed) and "before its connect/publish" in ev.reason


def test_connections_share_one_budget_and_release_returns_it() -> None:
    budget = ByteBudget(700_000)
    limits = RtmpLimits(max_unpublished_bytes=4096)
    peers = [publishing(limits=limits, budget=budget)[0] for _ in range(2)]
    for server in peers:
        server.receive_data(encode_header(0, 6, 0, 400_000, 9, 1) + bytes(1000), 0.0)
    assert budget.used == 400_000
    (ev,) = peers[1].events()
    assert isinstance(ev, ConnectionFailed) and "server-wide limit" in ev.reason

    # With the budget spent, a newcomer still gets its own first bytes (a connect).
    newcomer = RtmpConnection(Role.SERVER, limits, budget=budget)
    FakeClient(newcomer).handshake()
    newcomer.receive_data(encode_header(0, 6, 0, 4000, 9, 1) + bytes(1000), 0.0)
    assert not newcomer.closed and budget.used == 404_000

    for server in (*peers, newcomer):
        server.release()
        server.release()  # idempotent
    assert budget.used == 0 and peers[0].buffered == 0
