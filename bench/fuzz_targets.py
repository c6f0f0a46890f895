"""What ``bench.fuzz`` feeds: for each parser, valid vectors and a driver.

Vectors are built here from the project's own encoders (chunk writer, AMF0 encoder,
FLV tag builder, TS muxer, a real SRT caller talking to a real listener) with fixed
parameter sets, so they are deterministic and need no peer program. A driver takes
one (mutated) input and pushes it through the public API the network layer uses.

``allowed`` is the contract: the exceptions a target may raise for peer input. The
parsers may raise their protocol's error type; ``RtmpConnection`` and ``SrtListener``
promise never to raise for peer input at all, so nothing is allowed there.
"""

from __future__ import annotations

import contextlib
import random
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.fuzz_mutate import splits
from server.media import aac, flv, h264, h265
from server.media.errors import MediaFormatError
from server.media.frame import Codec, CodecConfig, Frame, TrackKind
from server.media.mpegts import TsDemuxer, TsMuxer
from server.protocols import rtmp, srt
from server.protocols.rtmp import amf0, commands
from server.protocols.rtmp.amf0 import UNDEFINED, Date, EcmaArray, TypedObject
from server.protocols.rtmp.chunk import encode_message
from server.protocols.rtmp.handshake import PACKET_SIZE
from server.protocols.rtmp.messages import (
    MessageType,
    UserControlEvent,
    abort,
    acknowledgement,
    set_chunk_size,
    user_control,
    window_ack_size,
)
from server.protocols.srt import control, handshake
from server.protocols.srt.crypto import parse_key_material
from server.protocols.srt.packet import ControlPacket, DataPacket

# Parameter sets of a 320x180 x264 / x265 encode (fixed bytes: no encoder needed).
H264_SPS = bytes.fromhex("6742c00dda05067e7840000003004000000f03c50aa8")
H264_PPS = bytes.fromhex("68ce0fc8")
H265_VPS = bytes.fromhex("40010c01ffff01600000030090000003000003003c959409")
H265_SPS = bytes.fromhex(
    "42010101600000030090000003000003003ca00a080c1f3e595952930b9a020000030002000003003c10"
)
H265_PPS = bytes.fromhex("4401c073c189")
RTMP_C0C1 = b"\x03" + bytes(8) + bytes(range(256)) * 5 + bytes(PACKET_SIZE - 8 - 1280)
RTMP_C2 = bytes(PACKET_SIZE)
SRT_ADDR = ("192.0.2.10", 40000)
SRT_SECRET = bytes(range(32))
SRT_PASSPHRASE = "fuzz-passphrase-1"


@dataclass(frozen=True)
class Target:
    name: str
    what: str
    corpus: Sequence[bytes]
    run: Callable[[bytes, random.Random], None]
    allowed: tuple[type[BaseException], ...]


# ------------------------------------------------------------------ media vectors


def _configs() -> list[CodecConfig]:
    return [
        h264.config_from_parameter_sets([H264_SPS], [H264_PPS]),
        h265.config_from_parameter_sets([H265_VPS], [H265_SPS], [H265_PPS]),
        aac.config_from_asc(aac.build_asc(2, 48000, 2)),
    ]


def _frames(codec: str, track: TrackKind, count: int, rng: random.Random) -> list[Frame]:
    out: list[Frame] = []
    for i in range(count):
        if track is TrackKind.VIDEO:
            head = (b"\x65" if i == 0 else b"\x41") if codec == Codec.H264 else b"\x26\x01"
            body = head + rng.randbytes(rng.randrange(20, 400))
            payload = struct.pack(">I", len(body)) + body
            out.append(Frame(track, codec, i * 3000, i * 3000 + 6000, i == 0, payload))
        else:
            out.append(Frame(track, codec, i * 1920, i * 1920, True, rng.randbytes(40)))
    return out


def _flv_tags(items: Sequence[CodecConfig | Frame | flv.EndOfSequence]) -> bytes:
    """FLV file tag framing (type, 24-bit size, timestamp, stream id, body, back pointer):
    its length fields give the mutator more to break than bare bodies do."""
    out = bytearray()
    for n, item in enumerate(items):
        body = flv.build_tag_body(item)
        kind = 9 if item.track is TrackKind.VIDEO else 8
        ts = n * 33
        out += struct.pack(">B", kind) + len(body).to_bytes(3, "big")
        out += (ts & 0xFFFFFF).to_bytes(3, "big") + bytes([ts >> 24]) + bytes(3) + body
        out += struct.pack(">I", len(body) + 11)
    return bytes(out)


def flv_corpus() -> list[bytes]:
    rng = random.Random(1)
    video264, video265, audio = _configs()
    out = []
    for video in (video264, video265):
        frames = _frames(video.codec, TrackKind.VIDEO, 3, rng)
        sound = _frames(Codec.AAC, TrackKind.AUDIO, 2, rng)
        end = flv.EndOfSequence(TrackKind.VIDEO, video.codec)
        out.append(_flv_tags([video, audio, *frames, *sound, end]))
        out.append(_flv_tags([video, frames[0]]))
        out.append(_flv_tags([audio, *sound]))
    return out


def run_flv(data: bytes, rng: random.Random) -> None:
    parser = flv.FlvTagParser()
    pos = 0
    while pos + 11 <= len(data):
        kind = data[pos]
        size = int.from_bytes(data[pos + 1 : pos + 4], "big")
        ts = int.from_bytes(data[pos + 4 : pos + 7], "big") | data[pos + 7] << 24
        body = data[pos + 11 : pos + 11 + size]
        if kind & 1:
            parser.video(body, ts)
        else:
            parser.audio(body, ts)
        pos += 11 + size + 4


def ts_corpus() -> list[bytes]:
    rng = random.Random(2)
    video264, video265, audio = _configs()
    out = []
    for video in (video264, video265):
        muxer = TsMuxer([video, audio])
        frames = _frames(video.codec, TrackKind.VIDEO, 4, rng)
        frames += _frames(Codec.AAC, TrackKind.AUDIO, 4, rng)
        frames.sort(key=lambda f: f.dts)
        stream = b"".join(muxer.mux(f, 0, with_tables=i == 0) for i, f in enumerate(frames))
        out.append(stream)
        out.append(stream[: 7 * 188])
    return out


def run_ts(data: bytes, rng: random.Random) -> None:
    demuxer = TsDemuxer()
    for piece in splits(rng, data) if len(data) < 2048 else [data[:1316], data[1316:]]:
        demuxer.feed(piece)
    if rng.randrange(4) == 0:
        demuxer.discontinuity()
        demuxer.feed(data)


# ------------------------------------------------------------------ RTMP


def amf0_corpus() -> list[bytes]:
    nested: dict[str, amf0.AmfValue] = {"a": [1.0, "x", None, {"b": True}], "c": UNDEFINED}
    return [
        commands.encode_command("connect", 1, {"app": "live", "tcUrl": "rtmp://h/live"}),
        commands.encode_command("publish", 5, None, "key", "live"),
        amf0.encode_values("@setDataFrame", "onMetaData", EcmaArray(width=1280.0, fps=30.0)),
        amf0.encode_values(nested, TypedObject("cls", {"k": "v" * 70}), Date(1.5e12, 60)),
        amf0.encode_values("L" * 70000, [[], {}, EcmaArray()], -0.0, float("inf")),
        b"\x11\x04\x7f\x11\x06\x05ab\x11\x01\x11\x03\x11\x02\x11\x05"
        + bytes(8)
        + b"\x11\x04\x81\x80\x80\x01",
        b"\x0a\x00\x00\x00\x02\x00" + bytes(8) + b"\x01\x01\x0d\x06",
        b"\x03\x00\x01a\x07\x00\x00\x00\x00\x09",  # an object referring to itself
    ]


def run_amf0(data: bytes, rng: random.Random) -> None:
    amf0.decode_all(data)


def _rtmp_session(chunk_size: int, csid: int, rng: random.Random) -> bytes:
    """A publisher's whole post-handshake stream: connect .. media .. unpublish."""
    video264, _, audio = _configs()

    def msg(type_id: int, stream: int, ts: int, body: bytes, cs: int = 3) -> bytes:
        return encode_message(cs, type_id, stream, ts, body, chunk_size)

    cmd = commands.encode_command
    out = [
        msg(MessageType.SET_CHUNK_SIZE, 0, 0, set_chunk_size(chunk_size), 2)
        if chunk_size != 128
        else b"",
        msg(20, 0, 0, cmd("connect", 1, {"app": "live", "tcUrl": "rtmp://h/live"})),
        msg(MessageType.WINDOW_ACK_SIZE, 0, 0, window_ack_size(2500000), 2),
        msg(20, 0, 0, cmd("releaseStream", 2, None, "key")),
        msg(20, 0, 0, cmd("createStream", 3, None)),
        msg(20, 1, 0, cmd("publish", 4, None, "key", "live"), csid),
        msg(18, 1, 0, amf0.encode_values("@setDataFrame", "onMetaData", EcmaArray(fps=30.0)), csid),
        msg(9, 1, 0, flv.build_tag_body(video264), csid),
        msg(8, 1, 0, flv.build_tag_body(audio), csid + 1),
    ]
    frames = _frames(Codec.H264, TrackKind.VIDEO, 3, rng)
    for f in frames:
        out.append(msg(9, 1, f.dts // 90, flv.build_tag_body(f), csid))
    out.append(msg(MessageType.ACKNOWLEDGEMENT, 0, 0, acknowledgement(4096), 2))
    out.append(
        msg(MessageType.USER_CONTROL, 0, 0, user_control(UserControlEvent.PING_REQUEST, 7), 2)
    )
    tag = flv.build_tag_body(frames[1])
    part = (
        bytes([9])
        + len(tag).to_bytes(3, "big")
        + bytes(4)
        + bytes(3)
        + tag
        + (len(tag) + 11).to_bytes(4, "big")
    )
    out.append(msg(MessageType.AGGREGATE, 1, 100, part * 2, csid))
    out.append(msg(MessageType.ABORT, 0, 0, abort(csid + 1), 2))
    out.append(msg(20, 0, 0, cmd("FCUnpublish", 5, None, "key")))
    out.append(msg(20, 0, 0, cmd("deleteStream", 6, None, 1.0)))
    return b"".join(out)


def rtmp_corpus() -> list[bytes]:
    rng = random.Random(3)
    return [
        _rtmp_session(size, csid, rng)
        for size, csid in ((128, 4), (4096, 6), (60, 63), (1, 319), (65536, 65598))
    ]


def _drain(conn: rtmp.RtmpConnection) -> None:
    """Decide what the server asks, like the ingest adapter does: accept everything."""
    for _ in range(8):
        events = conn.events()
        if not events:
            return
        for event in events:
            if isinstance(event, rtmp.ConnectRequested) and not conn.closed:
                conn.accept_connect()
            elif isinstance(event, rtmp.PublishRequested) and not conn.closed:
                conn.accept_publish(event.stream_id)


def run_rtmp(data: bytes, rng: random.Random) -> None:
    """A server connection fed the valid handshake then the input (1 in 8: the input
    replaces the handshake too), in the reads ``splits`` picks."""
    conn = rtmp.RtmpConnection(rtmp.Role.SERVER, now=0.0)
    if rng.randrange(8):
        conn.receive_data(RTMP_C0C1, 0.0)
        conn.receive_data(RTMP_C2, 0.0)
    else:
        data = RTMP_C0C1 + RTMP_C2[: rng.randrange(PACKET_SIZE + 1)] + data
    now = 0.0
    for piece in splits(rng, data):
        now += 0.001
        conn.receive_data(piece, now)
        _drain(conn)
        conn.data_to_send()
    conn.handle_timer(now + 60.0)
    conn.receive_data(b"", now + 60.0)
    conn.events()


# ------------------------------------------------------------------ SRT


def _frame(datagrams: Sequence[bytes]) -> bytes:
    """Datagrams as one mutable buffer: a 2-byte length before each."""
    return b"".join(len(d).to_bytes(2, "big") + d for d in datagrams)


def _unframe(data: bytes) -> list[bytes]:
    out = []
    pos = 0
    while pos + 2 <= len(data):
        size = int.from_bytes(data[pos : pos + 2], "big")
        out.append(data[pos + 2 : pos + 2 + size])
        pos += 2 + size
    return out


def _new_listener() -> srt.SrtListener:
    return srt.SrtListener(
        srt.SrtLimits(), 0.0, secret=SRT_SECRET, random_bytes=random.Random(9).randbytes
    )


def _srt_session(passphrase: str | None, streamid: str) -> list[bytes]:
    """What a real caller sends a real listener: handshake, data, control, shutdown."""
    caller = srt.SrtConnection.caller(
        0.0, streamid=streamid, passphrase=passphrase, random_bytes=random.Random(8).randbytes
    )
    listener = _new_listener()
    sent: list[bytes] = []
    conn: srt.SrtConnection | None = None
    established = False
    for step in range(6):
        now = step * 0.01
        for datagram in caller.datagrams_to_send():
            sent.append(datagram)
            if conn is not None:
                conn.receive(datagram, now)
            else:
                listener.receive(datagram, SRT_ADDR, now)
        for event in listener.events():
            if isinstance(event, srt.ConnectionRequest):
                conn = listener.accept(event, now, passphrase=passphrase)
        answers = [d for d, _ in listener.datagrams_to_send()]
        answers += conn.datagrams_to_send() if conn is not None else []
        for datagram in answers:
            caller.receive(datagram, now)
        established |= any(isinstance(e, srt.ConnectionEstablished) for e in caller.events())
        if established:
            caller.send(b"\x47" + bytes(187), now)
    caller.close()
    sent += caller.datagrams_to_send()
    return sent


def srt_listener_corpus() -> list[bytes]:
    sessions = [
        _srt_session(None, "#!::r=live/key,m=publish"),
        _srt_session(SRT_PASSPHRASE, "#!::r=live/secret,m=publish"),
        _srt_session(None, "plainkey"),
    ]
    return [_frame(s) for s in sessions] + [_frame(s[:2]) for s in sessions]


def run_srt_listener(data: bytes, rng: random.Random) -> None:
    """The listener and the connection it accepts, fed the datagrams in order.
    Encrypted requests are accepted with the passphrase 1 time in 16 (PBKDF2 is slow)."""
    listener = _new_listener()
    conns: list[srt.SrtConnection] = []
    now = 0.0
    for datagram in _unframe(data):
        now += 0.01
        conn = listener.receive(datagram, SRT_ADDR, now)
        if conn is not None:
            conn.events()
            conn.datagrams_to_send()
        for event in listener.events():
            if not isinstance(event, srt.ConnectionRequest):
                continue
            if event.encrypted and rng.randrange(16):
                listener.reject(event, rng.choice((2403, 1010)), now)
                continue
            passphrase = SRT_PASSPHRASE if event.encrypted else None
            accepted = listener.accept(event, now, passphrase=passphrase)
            if accepted is not None:
                conns.append(accepted)
        listener.datagrams_to_send()
        listener.handle_timer(now)
    for conn in conns:
        conn.handle_timer(now + 10.0)
        conn.events()
        conn.datagrams_to_send()


def srt_packet_corpus() -> list[bytes]:
    sessions = [d for s in (_srt_session(SRT_PASSPHRASE, "#!::r=live/k,m=publish"),) for d in s]
    ack = control.Ack(100, 20000, 5000, 8192, 1000, 5000, 125000)
    return [
        *sessions,
        control.ack_packet(1, ack, 1000, 0x1234),
        control.ackack_packet(1, 1000, 0x1234),
        control.nak_packet([(5, 5), (9, 20)], 1000, 0x1234, 1456),
        control.dropreq_packet(3, 10, 20, 1000, 0x1234),
        control.keepalive_packet(1000, 0x1234),
        control.shutdown_packet(1000, 0x1234),
        control.peer_error_packet(4000, 1000, 0x1234),
    ]


_PACKET_PARSERS: tuple[Callable[[bytes], object], ...] = (
    DataPacket.decode,
    ControlPacket.decode,
    handshake.parse_handshake_packet,
)
_CIF_PARSERS: tuple[Callable[[bytes], object], ...] = (
    handshake.parse_handshake_cif,
    control.parse_ack,
    control.parse_loss_list,
    control.parse_drop_request,
    parse_key_material,
    handshake.parse_srt_hs_ext,
    handshake.decode_string_ext,
)


def run_srt_packet(data: bytes, rng: random.Random) -> None:
    """Every SRT parser on the datagram (a protocol error from one does not stop the
    rest: the contract is per parser)."""
    for parse in _PACKET_PARSERS:
        with contextlib.suppress(srt.ProtocolError):
            parse(data)
    cif = data[16:]
    for parse in _CIF_PARSERS:
        with contextlib.suppress(srt.ProtocolError):
            parse(cif)
    srt.parse_streamid(cif.decode("utf-8", "replace"))


def targets() -> dict[str, Target]:
    """Every target, by name (corpora are built once, on first use)."""
    made = [
        Target("rtmp", "RtmpConnection (server) fed chunk streams", rtmp_corpus(), run_rtmp, ()),
        Target("amf0", "AMF0 (and AMF3 switch) decoder", amf0_corpus(), run_amf0,
               (rtmp.ProtocolError,)),
        Target("flv", "FLV tag parser (legacy + enhanced)", flv_corpus(), run_flv,
               (MediaFormatError,)),
        Target("srt-packet", "SRT packet, control, handshake, KM, stream ID parsers",
               srt_packet_corpus(), run_srt_packet, (srt.ProtocolError,)),
        Target("srt-listener", "SrtListener + accepted SrtConnection fed datagrams",
               srt_listener_corpus(), run_srt_listener, ()),
        Target("ts", "MPEG-TS demuxer", ts_corpus(), run_ts, (MediaFormatError,)),
    ]  # fmt: skip
    return {t.name: t for t in made}
