"""Property tests: round trips hold; hostile bytes only ever produce ProtocolError
(parsers) and never an exception from SrtListener.receive / SrtConnection.receive."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.protocols.srt import (
    ConnectionRequest,
    ProtocolError,
    SrtConnection,
    SrtLimits,
    SrtListener,
    parse_streamid,
)
from server.protocols.srt.control import (
    encode_loss_list,
    parse_ack,
    parse_drop_request,
    parse_loss_list,
)
from server.protocols.srt.crypto import parse_key_material
from server.protocols.srt.handshake import (
    Handshake,
    decode_string_ext,
    encode_string_ext,
    parse_handshake_cif,
    parse_handshake_packet,
    parse_srt_hs_ext,
)
from server.protocols.srt.packet import ControlPacket, DataPacket, KeyIndex, PacketPosition

from .helpers import ADDR, seeded

# Against the compiled modules and their pure-Python twins (tests/accel_twins.py).
pytestmark = pytest.mark.usefixtures("implementation")

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
u32 = st.integers(0, 0xFFFFFFFF)
seq31 = st.integers(0, 0x7FFFFFFF)
blobs = st.binary(max_size=300)


@FUZZ
@given(blobs)
def test_parsers_raise_only_protocol_error(data: bytes) -> None:
    for parser in (
        DataPacket.decode,
        ControlPacket.decode,
        parse_handshake_cif,
        parse_handshake_packet,
        parse_ack,
        parse_loss_list,
        parse_drop_request,
        parse_key_material,
        parse_srt_hs_ext,
    ):
        with contextlib.suppress(ProtocolError):
            parser(data)
    decode_string_ext(data)  # never raises at all


@FUZZ
@given(st.text(max_size=80))
def test_streamid_parser_raises_only_protocol_error(text: str) -> None:
    with contextlib.suppress(ProtocolError):
        info = parse_streamid(text)
        assert info.key and info.mode == "publish"


@FUZZ
@given(
    seq31,
    st.integers(0, (1 << 26) - 1),
    u32,
    u32,
    blobs,
    st.sampled_from(PacketPosition),
    st.booleans(),
    st.sampled_from([KeyIndex.CLEAR, KeyIndex.EVEN, KeyIndex.ODD]),
    st.booleans(),
)
def test_data_packet_roundtrip(seq, msgno, ts, dst, payload, pos, order, key, rexmit) -> None:
    pkt = DataPacket(seq, msgno, ts, dst, payload, pos, order, key, rexmit)
    assert DataPacket.decode(pkt.encode()) == pkt


@FUZZ
@given(st.integers(0, 0x7FFF), st.integers(0, 0xFFFF), u32, u32, u32, blobs)
def test_control_packet_roundtrip(ctype, subtype, info, ts, dst, cif) -> None:
    pkt = ControlPacket(ctype, subtype, info, ts, dst, cif)
    assert ControlPacket.decode(pkt.encode()) == pkt


words = st.binary(max_size=40).map(lambda b: b + bytes(-len(b) % 4))


@FUZZ
@given(
    st.tuples(*[u32] * 2),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.tuples(*[u32] * 5),
    st.binary(min_size=16, max_size=16),
    st.lists(st.tuples(st.integers(0, 0xFFFF), words), max_size=5),
)
def test_handshake_roundtrip(a, enc, ext, b, ip, exts) -> None:
    hs = Handshake(a[0], enc, ext, a[1], *b, peer_ip=ip, extensions=tuple(exts))
    assert parse_handshake_cif(hs.encode_cif()) == hs


@FUZZ
@given(st.lists(st.tuples(seq31, st.integers(0, 50)), max_size=60))
def test_loss_list_roundtrip(spans) -> None:
    ranges = [(first, (first + n) & 0x7FFFFFFF) for first, n in spans]
    encoded = encode_loss_list(ranges, 10_000)
    assert parse_loss_list(encoded) == ranges if ranges else encoded == b""


@FUZZ
@given(st.text(max_size=100).filter(lambda t: "\x00" not in t))
def test_string_extension_roundtrip(text: str) -> None:
    encoded = encode_string_ext(text)
    assert len(encoded) % 4 == 0 and decode_string_ext(encoded) == text


# ---------------------------------------------------------------- whole endpoints


def datagrams(dst: st.SearchStrategy[int]) -> st.SearchStrategy[bytes]:
    """Random datagrams, many with a plausible header (data or control)."""
    header = st.builds(
        lambda w0, w1, ts, d: struct.pack(">IIII", w0, w1, ts, d),
        st.one_of(
            seq31,
            st.integers(0, 0x7FFF).map(lambda t: 0x80000000 | (t << 16)),
            st.sampled_from([0x80000000, 0x80020000, 0x80030000, 0x80070000, 0xFFFF0003]),
        ),
        u32,
        u32,
        dst,
    )
    return st.one_of(blobs, st.builds(lambda h, b: h + b, header, blobs))


@FUZZ
@given(st.lists(datagrams(st.sampled_from([0, 1, 0xDEAD])), max_size=20))
def test_listener_never_raises(packets: list[bytes]) -> None:
    listener = SrtListener(now=0.0, random_bytes=seeded(1))
    for i, datagram in enumerate(packets):
        listener.receive(datagram, ADDR, i * 0.01)
        listener.handle_timer(i * 0.01)
        for event in listener.events():
            if isinstance(event, ConnectionRequest):
                listener.accept(event, i * 0.01)
        listener.datagrams_to_send()


@FUZZ
@given(st.lists(datagrams(st.just(0x2000)), max_size=40), st.booleans())
def test_connection_never_raises(packets: list[bytes], tsbpd: bool) -> None:
    conn = SrtConnection.accepted(
        0.0,
        socket_id=0x2000,
        peer_addr=ADDR,
        peer_socket_id=0x1000,
        isn=0x7FFFFFF0,
        streamid="",
        latency_ms=50,
        peer_latency_ms=50,
        receive_keys=None,
        limits=SrtLimits(tsbpd_delivery=tsbpd, flow_window=256),
        handshake_response=b"",
    )
    conn.send(b"payload", 0.0)
    now = 0.0
    for datagram in packets:
        now += 0.003
        conn.receive(datagram, now)
        timer = conn.next_timer()
        if timer is not None and timer <= now + 0.01:
            conn.handle_timer(max(now, timer))
        conn.events()
        conn.datagrams_to_send()
        if not conn.closed:
            conn.send(b"more", now)


@FUZZ
@given(st.lists(datagrams(st.integers(0, 0xFFFFFFFF)), max_size=20))
def test_caller_never_raises(packets: list[bytes]) -> None:
    caller = SrtConnection.caller(0.0, passphrase="supersecret123", random_bytes=seeded(2))
    [induction] = caller.datagrams_to_send()
    sid = struct.unpack_from(">I", induction, 16 + 24)[0]
    for i, datagram in enumerate(packets):
        # aim half of them at the caller's socket
        if i % 2 and len(datagram) >= 16:
            datagram = datagram[:12] + struct.pack(">I", sid) + datagram[16:]
        caller.receive(datagram, i * 0.01)
        caller.handle_timer(i * 0.01)
        caller.events()
        caller.datagrams_to_send()


@FUZZ
@given(st.data())
def test_mutated_handshakes_never_raise(data: st.DataObject) -> None:
    """Valid conclusions with random bytes flipped still never escape as exceptions."""
    caller = SrtConnection.caller(
        0.0, streamid="#!::r=live/x", passphrase="supersecret123", random_bytes=seeded(3)
    )
    listener = SrtListener(now=0.0, random_bytes=seeded(4))
    [induction] = caller.datagrams_to_send()
    listener.receive(induction, ADDR, 0.0)
    [(answer, _addr)] = listener.datagrams_to_send()
    caller.receive(answer, 0.0)
    [conclusion] = caller.datagrams_to_send()
    mutated = bytearray(conclusion)
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(16, len(mutated) - 1))
        mutated[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(16, len(mutated)))
    listener.receive(bytes(mutated[:cut]), ADDR, 0.0)
    for event in listener.events():
        if isinstance(event, ConnectionRequest):
            conn = listener.accept(event, 0.0, passphrase="supersecret123")
            if conn is not None:
                for d in conn.datagrams_to_send():
                    caller.receive(d, 0.01)
    for d, _addr in listener.datagrams_to_send():
        caller.receive(d, 0.01)
    caller.events()
