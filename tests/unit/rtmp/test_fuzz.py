"""Property tests: round trips hold, and hostile bytes only ever produce ProtocolError
(parsers) or a ConnectionFailed event (connections) -- never another exception."""

from __future__ import annotations

import contextlib
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.protocols.rtmp import (
    ConnectionFailed,
    ConnectRequested,
    ProtocolError,
    PublishRequested,
    Role,
    RtmpConnection,
    amf0,
    commands,
)
from server.protocols.rtmp.amf0 import UNDEFINED, UNSUPPORTED, Date, EcmaArray, TypedObject
from server.protocols.rtmp.chunk import Message, encode_message

from .helpers import C0C1, C2, cmd, new_reader

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

keys = st.text(max_size=8)
scalars = (
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.just(UNDEFINED)
    | st.just(UNSUPPORTED)
    | st.builds(Date, st.floats(allow_nan=False), st.integers(-32768, 32767))
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(keys, children, max_size=4)
        | st.dictionaries(keys, children, max_size=4).map(EcmaArray)
        | st.builds(TypedObject, keys, st.dictionaries(keys, children, max_size=3))
    ),
    max_leaves=20,
)


@FUZZ
@given(st.lists(values, max_size=4))
def test_amf0_round_trip(items: list[amf0.AmfValue]) -> None:
    data = amf0.encode_values(*items)
    assert amf0.decode_all(data) == items
    assert amf0.encode_values(*amf0.decode_all(data)) == data


@FUZZ
@given(st.binary(max_size=300))
def test_amf0_decoder_only_raises_protocol_error(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        amf0.decode_all(data)


marker_soup = st.lists(
    st.sampled_from(
        [
            b"\x00" + bytes(8),
            b"\x01\x01",
            b"\x02\x00\x01a",
            b"\x03",
            b"\x05",
            b"\x06",
            b"\x07\x00\x00",
            b"\x08\x00\x00\x00\x02",
            b"\x0a\x00\x00\x00\x03",
            b"\x00\x00\x09",
            b"\x00\x01k",
            b"\x0b",
            b"\x0c\x00\x00\x00\x01z",
            b"\x0d",
            b"\x0f\x00\x00\x00\x00",
            b"\x10\x00\x01C",
            b"\x11\x04\xff",
            b"\x11\x06\x03a",
            b"\xff",
        ]
    ),
    max_size=40,
).map(b"".join)


@FUZZ
@given(marker_soup)
def test_amf0_decoder_on_marker_soup(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        amf0.decode_all(data)


@FUZZ
@given(st.binary(max_size=600))
def test_chunk_reader_only_raises_protocol_error(data: bytes) -> None:
    reader = new_reader()
    out: list[Message] = []
    try:
        reader.feed(data, out)
        reader.feed(data, out)
    except ProtocolError:
        pass


message_specs = st.lists(
    st.tuples(
        st.sampled_from([2, 3, 4, 63, 64, 319, 320, 65599]),  # every basic-header form
        st.sampled_from([8, 9, 18, 20]),
        st.integers(0, 3),
        st.integers(0, 0xFFFFFFFF),
        st.binary(max_size=700),
    ),
    min_size=1,
    max_size=6,
)


@FUZZ
@given(message_specs, st.sampled_from([1, 7, 128, 4096]), st.data())
def test_chunk_round_trip_with_random_splits(
    specs: list[tuple[int, int, int, int, bytes]], chunk_size: int, data: st.DataObject
) -> None:
    wire = b"".join(encode_message(c, t, s, ts, p, chunk_size) for c, t, s, ts, p in specs)
    reader = new_reader()
    reader.set_chunk_size(chunk_size)
    out: list[Message] = []
    pos = 0
    while pos < len(wire):
        step = data.draw(st.integers(1, 300))
        reader.feed(wire[pos : pos + step], out)
        pos += step
    assert [(m.csid, m.type_id, m.stream_id, m.timestamp, m.payload) for m in out] == specs
    assert reader.buffered == 0


def _decide(conn: RtmpConnection) -> None:
    pending = conn.events()
    while pending:
        for ev in pending:
            if isinstance(ev, ConnectRequested):
                conn.accept_connect()
            elif isinstance(ev, PublishRequested):
                conn.accept_publish(ev.stream_id)
        pending = conn.events()


def _server_at(stage: int) -> RtmpConnection:
    """0: handshake done, 1: connected, 2: publishing on stream 1 (chunk size 128)."""
    server = RtmpConnection(Role.SERVER)
    prefix = [C0C1, C2]
    if stage >= 1:
        prefix.append(encode_message(3, 20, 0, 0, cmd("connect", 1, {"app": "live"}), 128))
    if stage >= 2:
        prefix.append(encode_message(3, 20, 0, 0, cmd("createStream", 2, None), 128))
        prefix.append(encode_message(3, 20, 1, 0, cmd("publish", 0, None, "k", "live"), 128))
    server.receive_data(b"".join(prefix), 0.0)
    _decide(server)
    assert not server.closed
    server.data_to_send()
    return server


def _feed_never_raises(conn: RtmpConnection, chunks: list[bytes]) -> None:
    for i, piece in enumerate(chunks):
        conn.receive_data(piece, float(i))  # must not raise, whatever the bytes
        _decide(conn) if not conn.closed else conn.events()
        conn.data_to_send()
        conn.handle_timer(float(i))
    if conn.closed:
        conn.receive_data(b"more", 99.0)
        assert conn.events() == []


@pytest.mark.parametrize("stage", [0, 1, 2])
@FUZZ
@given(st.lists(st.binary(max_size=400), max_size=4))
def test_server_connection_survives_random_bytes(stage: int, chunks: list[bytes]) -> None:
    _feed_never_raises(_server_at(stage), chunks)


small_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=6,
)
garbage_payloads = st.one_of(
    st.binary(max_size=200),
    st.lists(small_values, max_size=4).map(lambda vs: amf0.encode_values(*vs)),
    st.tuples(
        st.sampled_from(
            [
                "connect",
                "createStream",
                "publish",
                "deleteStream",
                "FCUnpublish",
                "closeStream",
                "releaseStream",
                "FCPublish",
                "play",
                "_checkbw",
                "@setDataFrame",
                "onMetaData",
            ]
        ),
        st.lists(small_values, max_size=3),
    ).map(lambda nv: amf0.encode_values(nv[0], *nv[1])),
)
garbage_messages = st.lists(
    st.tuples(
        st.sampled_from([2, 3, 4, 5, 6]),
        st.integers(1, 23),
        st.sampled_from([0, 1, 2]),
        st.integers(0, 0xFFFFFFFF),
        garbage_payloads,
    ),
    max_size=8,
)


@FUZZ
@given(st.sampled_from([0, 1, 2]), garbage_messages)
def test_server_connection_survives_well_framed_garbage(
    stage: int, msgs: list[tuple[int, int, int, int, bytes]]
) -> None:
    server = _server_at(stage)
    wires = [encode_message(c, t, s, ts, p, 128) for c, t, s, ts, p in msgs]
    _feed_never_raises(server, wires)


@settings(FUZZ, max_examples=150)
@given(garbage_messages)
def test_client_connection_survives_well_framed_garbage(
    msgs: list[tuple[int, int, int, int, bytes]],
) -> None:
    client = RtmpConnection(Role.CLIENT)
    client.start("live", "rtmp://x/live", "k")
    c0c1 = client.data_to_send()
    client.receive_data(b"\x03" + bytes(1536) + c0c1[1:], 0.0)
    ok = commands.connect_result(1)
    client.receive_data(encode_message(3, 20, 0, 0, ok, 128), 0.0)
    client.data_to_send()
    for c, t, s, ts, p in msgs:
        client.receive_data(encode_message(c, t, s, ts, p, 128), 0.0)
        events = client.events()
        assert all(not isinstance(e, ConnectionFailed) or e.reason for e in events)
        client.data_to_send()


def test_fuzz_values_are_finite_where_compared() -> None:
    """Guard for the round-trip property: NaN is excluded because NaN != NaN."""
    assert not math.isnan(amf0.decode(amf0.encode(1.0))[0])  # type: ignore[arg-type]
