"""Protocol control messages, user control events, aggregates, timestamp unwrapping,
commands and the handshake."""

from __future__ import annotations

import pytest

from server.protocols.rtmp import ProtocolError, RtmpLimits, amf0, commands, messages
from server.protocols.rtmp.handshake import PACKET_SIZE, Handshake, make_c1_s1
from server.protocols.rtmp.messages import (
    AggregatePart,
    MessageType,
    PeerBandwidthLimit,
    TimestampUnwrapper,
    UserControlEvent,
)

from .helpers import parse_output

# Against the compiled modules and their pure-Python twins (tests/accel_twins.py).
pytestmark = pytest.mark.usefixtures("implementation")


def test_control_payload_vectors() -> None:
    assert messages.set_chunk_size(4096) == bytes.fromhex("00001000")
    assert messages.abort(6) == bytes.fromhex("00000006")
    assert messages.acknowledgement(0x1_0000_0005) == bytes.fromhex("00000005")
    assert messages.window_ack_size(2_500_000) == bytes.fromhex("002625a0")
    assert messages.set_peer_bandwidth(2_500_000, PeerBandwidthLimit.DYNAMIC) == bytes.fromhex(
        "002625a002"
    )
    assert messages.user_control(UserControlEvent.STREAM_BEGIN, 1) == bytes.fromhex("000000000001")
    assert messages.user_control(UserControlEvent.SET_BUFFER_LENGTH, 1, 3000) == bytes.fromhex(
        "00030000000100000bb8"
    )
    with pytest.raises(ValueError):
        messages.set_chunk_size(0)


def test_control_message_framing() -> None:
    wire = messages.control_message(MessageType.WINDOW_ACK_SIZE, messages.window_ack_size(5), 128)
    assert wire == bytes.fromhex("02 000000 000004 05 00000000 00000005")
    (msg,) = parse_output(wire)
    assert messages.parse_u32(msg.payload, "x") == 5


def test_parsers() -> None:
    assert messages.parse_set_peer_bandwidth(bytes.fromhex("002625a001")) == (2_500_000, 1)
    ping = messages.parse_user_control(bytes.fromhex("000612345678"))
    assert ping == messages.UserControl(6, (0x12345678,))
    assert messages.parse_user_control(bytes.fromhex("0063")).values == ()  # unknown event
    for bad in (b"", b"\x00", b"\x00\x06\x00", b"\x00\x03\x00\x00\x00\x01"):
        with pytest.raises(ProtocolError):
            messages.parse_user_control(bad)
    with pytest.raises(ProtocolError):
        messages.parse_u32(b"\x00\x00", "Acknowledgement")
    with pytest.raises(ProtocolError):
        messages.parse_set_peer_bandwidth(b"\x00\x00\x00\x01")


def test_aggregate_round_trip_rebases_timestamps() -> None:
    body = messages.encode_aggregate(
        [
            AggregatePart(9, 5000, b"\x17\x01video"),
            AggregatePart(8, 5010, b"\xaf\x01audio"),
            AggregatePart(9, 0x1_0000_0000 + 5040, b"\x27\x01more"),  # ts_ext byte wraps
        ]
    )
    parts = messages.split_aggregate(body, 100)
    assert parts == [
        AggregatePart(9, 100, b"\x17\x01video"),
        AggregatePart(8, 110, b"\xaf\x01audio"),
        AggregatePart(9, 140, b"\x27\x01more"),
    ]


def test_aggregate_tolerates_missing_last_back_pointer_but_not_truncated_body() -> None:
    body = messages.encode_aggregate([AggregatePart(8, 0, b"abc")])
    assert len(messages.split_aggregate(body[:-4], 0)) == 1
    with pytest.raises(ProtocolError):
        messages.split_aggregate(body[:-6], 0)


def test_timestamp_unwrapper() -> None:
    clock = TimestampUnwrapper()
    raws = [0xFFFFFF00, 0xFFFFFFF0, 0x10, 0x5, 0x1000]
    assert [clock.unwrap(r) for r in raws] == [
        0xFFFFFF00,
        0xFFFFFFF0,
        0x1_0000_0010,
        0x1_0000_0005,
        0x1_0000_1000,
    ]


# ------------------------------------------------------------------ commands


def test_parse_command_is_lenient_about_everything_but_the_name() -> None:
    c = commands.parse_command(amf0.encode_values("publish", 0.0, None, "key", "live"))
    assert (c.name, c.transaction_id, c.command_object, c.args) == (
        "publish",
        0.0,
        None,
        ("key", "live"),
    )
    assert c.string_arg(0) == "key" and c.arg(5) is None and c.string_arg(5) is None
    assert commands.parse_command(amf0.encode_values("onBWDone")).transaction_id == 0.0
    assert commands.parse_command(amf0.encode_values("x", None)).transaction_id == 0.0
    with pytest.raises(ProtocolError):
        commands.parse_command(amf0.encode_values(1.0, "connect"))
    with pytest.raises(ProtocolError):
        commands.parse_command(b"")


def test_as_stream_id() -> None:
    assert commands.as_stream_id(1.0) == 1
    for bad in (1.5, -1.0, float("nan"), float("inf"), True, "1", None, 2.0**33):
        assert commands.as_stream_id(bad) is None


def test_extract_metadata() -> None:
    meta = amf0.EcmaArray(width=1280.0)
    assert commands.extract_metadata(["@setDataFrame", "onMetaData", meta]) == {"width": 1280.0}
    assert commands.extract_metadata(["onMetaData", {"a": 1.0}]) == {"a": 1.0}
    assert commands.extract_metadata(["onMetaData", "nope"]) is None
    assert commands.extract_metadata(["onTextData", {"text": "hi"}]) is None


def test_connect_builder_with_enhanced_rtmp_fields() -> None:
    payload = commands.connect(
        1, "live", "rtmp://h/live", fourcc_list=["hvc1", "av01"], extra_properties={"capsEx": 1}
    )
    c = commands.parse_command(payload)
    assert c.name == "connect" and c.transaction_id == 1.0
    assert c.command_object == {
        "app": "live",
        "type": "nonprivate",
        "flashVer": commands.CLIENT_FLASH_VER,
        "tcUrl": "rtmp://h/live",
        "fourCcList": ["hvc1", "av01"],
        "capsEx": 1.0,
    }


def test_strip_amf3_format() -> None:
    assert commands.strip_amf3_format(b"\x00\x02") == b"\x02"
    with pytest.raises(ProtocolError):
        commands.strip_amf3_format(b"")


# ------------------------------------------------------------------ handshake


def test_handshake_both_roles_back_to_back() -> None:
    client = Handshake(False)
    server = Handshake(True)
    client.initiate()
    c0c1 = client.data_to_send()
    assert c0c1[0] == 3 and len(c0c1) == 1 + PACKET_SIZE
    assert c0c1[5:9] == bytes(4)  # simple handshake: zero version
    assert server.receive(c0c1) == b""
    s012 = server.data_to_send()
    assert len(s012) == 1 + 2 * PACKET_SIZE
    assert s012[1 + PACKET_SIZE :] == c0c1[1:]  # S2 echoes C1
    assert client.receive(s012 + b"tail") == b"tail"
    assert client.done
    c2 = client.data_to_send()
    assert c2 == s012[1 : 1 + PACKET_SIZE]  # C2 echoes S1
    assert server.receive(c2 + b"chunks") == b"chunks"
    assert server.done


def test_handshake_does_not_insist_on_echo() -> None:
    server = Handshake(True)
    server.receive(b"\x03" + make_c1_s1(1234))
    assert server.receive(b"\xaa" * PACKET_SIZE) == b""
    assert server.done


@pytest.mark.parametrize("version", [6, 0, 0xFF])
def test_handshake_refuses_other_versions(version: int) -> None:
    with pytest.raises(ProtocolError, match="version"):
        Handshake(True).receive(bytes([version]) + bytes(PACKET_SIZE))


def test_handshake_misuse() -> None:
    with pytest.raises(ValueError):
        Handshake(True).initiate()
    with pytest.raises(ValueError):
        make_c1_s1(0, b"short")


# ------------------------------------------------------------------ limits


def test_limits_defaults_and_validation() -> None:
    limits = RtmpLimits()
    assert (limits.handshake_timeout, limits.idle_timeout) == (10.0, 30.0)
    assert (limits.max_chunk_size, limits.max_message_size) == (65536, 16 * 1024 * 1024)
    assert (limits.ack_window, limits.out_chunk_size) == (2_500_000, 4096)
    for bad in (
        {"handshake_timeout": 0},
        {"idle_timeout": -1},
        {"out_chunk_size": 127},
        {"max_chunk_size": 0},
        {"max_message_size": 16 * 1024 * 1024 + 1},
        {"ack_window": 0},
        {"max_streams": 0},
        {"max_deferred_bytes": -1},
    ):
        with pytest.raises(ValueError):
            RtmpLimits(**bad)
