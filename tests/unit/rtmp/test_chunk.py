"""Chunk stream: header forms, csid forms, extended timestamps, reassembly, limits."""

from __future__ import annotations

import struct

import pytest

from server.protocols.rtmp import ProtocolError
from server.protocols.rtmp.chunk import (
    ChunkReader,
    Message,
    encode_basic_header,
    encode_header,
    encode_message,
)

from .helpers import new_reader

# Against the compiled modules and their pure-Python twins (tests/accel_twins.py).
pytestmark = pytest.mark.usefixtures("implementation")


def read_all(data: bytes, reader: ChunkReader | None = None) -> list[Message]:
    reader = reader if reader is not None else new_reader()
    out: list[Message] = []
    reader.feed(data, out)
    return out


def read_bytewise(data: bytes) -> list[Message]:
    reader = new_reader()
    out: list[Message] = []
    for i in range(len(data)):
        reader.feed(data[i : i + 1], out)
    return out


def as_tuples(msgs: list[Message]) -> list[tuple[int, int, int, int, bytes]]:
    return [(m.csid, m.type_id, m.stream_id, m.timestamp, m.payload) for m in msgs]


@pytest.mark.parametrize(
    ("fmt", "csid", "encoded"),
    [
        (0, 2, b"\x02"),
        (3, 63, b"\xff"),
        (1, 64, b"\x40\x00"),
        (2, 319, b"\x80\xff"),
        (0, 320, b"\x01\x00\x01"),
        (3, 65599, b"\xc1\xff\xff"),
    ],
)
def test_basic_header_forms(fmt: int, csid: int, encoded: bytes) -> None:
    assert encode_basic_header(fmt, csid) == encoded
    wire = encode_message(csid, 8, 1, 7, b"abc", 128)
    assert wire.startswith(encode_basic_header(0, csid))
    assert as_tuples(read_all(wire)) == [(csid, 8, 1, 7, b"abc")]


@pytest.mark.parametrize("csid", [0, 1, 65600])
def test_invalid_csid_is_our_error(csid: int) -> None:
    with pytest.raises(ValueError):
        encode_basic_header(0, csid)


def test_header_vectors_all_formats() -> None:
    assert encode_header(0, 3, 1000, 5, 20, 1) == bytes.fromhex("03 0003e8 000005 14 01000000")
    assert encode_header(1, 4, 33, 300, 9) == bytes.fromhex("44 000021 00012c 09")
    assert encode_header(2, 4, 33) == bytes.fromhex("84 000021")
    assert encode_header(3, 4) == b"\xc4"
    ext = 0x01020304
    assert encode_header(0, 5, ext, 1, 8, 1) == bytes.fromhex(
        "05 ffffff 000001 08 01000000 01020304"
    )
    assert encode_header(1, 5, ext, 1, 8) == bytes.fromhex("45 ffffff 000001 08 01020304")
    assert encode_header(2, 5, ext) == bytes.fromhex("85 ffffff 01020304")
    assert encode_header(3, 5, ext) == bytes.fromhex("c5 01020304")


def test_reader_applies_deltas_of_fmt_1_2_3() -> None:
    data = (
        encode_header(0, 4, 1000, 3, 8, 1)
        + b"aaa"
        + encode_header(1, 4, 20, 2, 9)
        + b"bb"
        + encode_header(2, 4, 30)
        + b"cc"
        + encode_header(3, 4)
        + b"dd"
    )
    expected = [
        (4, 8, 1, 1000, b"aaa"),
        (4, 9, 1, 1020, b"bb"),
        (4, 9, 1, 1050, b"cc"),
        (4, 9, 1, 1080, b"dd"),
    ]
    assert as_tuples(read_all(data)) == expected
    assert as_tuples(read_bytewise(data)) == expected


def test_fmt3_new_message_after_fmt0_repeats_the_absolute_value_as_delta() -> None:
    """ffmpeg/librtmp semantics: after fmt 0, a fmt-3 message adds the fmt-0 value."""
    data = encode_header(0, 4, 40, 1, 8, 1) + b"a" + encode_header(3, 4) + b"b"
    assert [m.timestamp for m in read_all(data)] == [40, 80]


def test_multi_chunk_message_and_interleaving() -> None:
    video = bytes(range(256)) * 2  # 512 bytes = 4 chunks of 128
    audio = b"A" * 10
    v = encode_message(6, 9, 1, 100, video, 128)
    a = encode_message(4, 8, 1, 90, audio, 128)
    # interleave: first video chunk, whole audio message, rest of the video
    first = 12 + 128
    data = v[:first] + a + v[first:]
    expected = [(4, 8, 1, 90, audio), (6, 9, 1, 100, video)]
    assert as_tuples(read_all(data)) == expected
    assert as_tuples(read_bytewise(data)) == expected


@pytest.mark.parametrize("ts", [0xFFFFFE, 0xFFFFFF, 0x1000000, 0xFFFFFFFF])
def test_extended_timestamp_repeated_on_continuations(ts: int) -> None:
    payload = bytes(300)
    wire = encode_message(6, 9, 1, ts, payload, 128)
    continuation = b"\xc6" + (struct.pack(">I", ts) if ts >= 0xFFFFFF else b"")
    assert wire.count(continuation) == 2 or ts < 0xFFFFFF
    assert as_tuples(read_all(wire)) == [(6, 9, 1, ts, payload)]
    assert as_tuples(read_bytewise(wire)) == [(6, 9, 1, ts, payload)]


def test_extended_timestamp_omitted_on_continuations_is_tolerated() -> None:
    """Old encoders omit the 4 bytes on fmt-3 continuations (SRS's tolerant rule)."""
    ts = 0x2000000
    payload = b"\x17" + bytes(range(200))  # does not start with the timestamp bytes
    data = encode_header(0, 6, ts, len(payload), 9, 1) + payload[:128] + b"\xc6" + payload[128:]
    assert as_tuples(read_all(data)) == [(6, 9, 1, ts, payload)]


def test_extended_delta_continuation_may_repeat_delta_or_absolute() -> None:
    base = 100
    delta = 0x1000000
    first = encode_header(0, 6, base, 1, 9, 1) + b"x"
    payload = bytes(200)
    header = encode_header(1, 6, delta, len(payload), 9)
    absolute = base + delta
    with_delta = first + header + payload[:128] + b"\xc6" + struct.pack(">I", delta) + payload[128:]
    with_abs = (
        first + header + payload[:128] + b"\xc6" + struct.pack(">I", absolute) + payload[128:]
    )
    for data in (with_delta, with_abs):
        msgs = read_all(data)
        assert [(m.timestamp, m.payload) for m in msgs] == [(base, b"x"), (absolute, payload)]


def test_timestamps_wrap_modulo_2_32() -> None:
    data = encode_header(0, 4, 0xFFFFFFF0, 1, 8, 1) + b"a" + encode_header(2, 4, 0x20) + b"b"
    assert [m.timestamp for m in read_all(data)] == [0xFFFFFFF0, 0x10]


def test_zero_length_message() -> None:
    data = encode_message(3, 20, 0, 0, b"", 128) + encode_message(3, 8, 1, 5, b"z", 128)
    assert as_tuples(read_all(data)) == [(3, 20, 0, 0, b""), (3, 8, 1, 5, b"z")]


def test_set_chunk_size_applies_to_the_next_chunk() -> None:
    big = bytes(range(250)) * 20  # 5000 bytes
    data = encode_message(2, 1, 0, 0, struct.pack(">I", 4096), 128) + encode_message(
        6, 9, 1, 0, big, 4096
    )
    reader = new_reader()
    msgs = read_all(data, reader)
    assert reader.chunk_size == 4096
    assert msgs[-1].payload == big
    assert as_tuples(read_bytewise(data))[-1][-1] == big


def test_abort_drops_partial_message() -> None:
    v = encode_message(6, 9, 1, 0, bytes(300), 128)
    abort = encode_message(2, 2, 0, 0, struct.pack(">I", 6), 128)
    fresh = encode_message(6, 9, 1, 50, b"new", 128)
    data = v[:140] + abort + fresh
    reader = new_reader()
    msgs = read_all(data, reader)
    assert [(m.type_id, m.payload) for m in msgs] == [(2, struct.pack(">I", 6)), (9, b"new")]
    assert reader.buffered == 0


def test_encode_message_sizes() -> None:
    payload = bytes(16 * 1024)
    wire = encode_message(6, 9, 1, 1000, payload, 4096)
    assert len(wire) == 12 + len(payload) + 3  # fmt-0 header + 3 one-byte continuations
    assert read_all(wire, _reader_with_chunk_size(4096))[0].payload == payload
    assert encode_message(6, 9, 1, 1000, memoryview(payload), 4096) == wire


def _reader_with_chunk_size(size: int) -> ChunkReader:
    reader = new_reader()
    reader.set_chunk_size(size)
    return reader


def test_every_split_point_gives_the_same_messages() -> None:
    data = (
        encode_message(3, 20, 0, 0, b"c" * 150, 128)
        + encode_message(320, 9, 1, 0x1234567, b"v" * 300, 128)
        + encode_message(64, 8, 1, 5, b"a" * 5, 128)
    )
    expected = as_tuples(read_all(data))
    assert len(expected) == 3
    for cut in range(1, len(data)):
        reader = new_reader()
        out: list[Message] = []
        reader.feed(data[:cut], out)
        reader.feed(data[cut:], out)
        assert as_tuples(out) == expected, cut


@pytest.mark.parametrize("csid", [3, 63, 64, 320])
@pytest.mark.parametrize("length", [0, 1, 127, 128, 129, 256, 257])
def test_whole_message_paths_agree_with_bytewise_feeding(csid: int, length: int) -> None:
    """Pinned edges of the one-step paths: a message of 0, one chunk, exactly k chunks
    or k chunks + 1 byte, on a chunk stream seen before (fmt 0 again) or new, with a
    1-, 2- or 3-byte basic header: the same messages as one byte at a time."""
    payload = bytes(range(256)) * 2
    data = (
        encode_message(csid, 9, 1, 10, payload[:length], 128)
        + encode_message(csid, 9, 1, 20, payload[1 : length + 1], 128)
        + encode_message(csid + 1, 8, 1, 30, payload[:length], 128)
    )
    expected = [
        (csid, 9, 1, 10, payload[:length]),
        (csid, 9, 1, 20, payload[1 : length + 1]),
        (csid + 1, 8, 1, 30, payload[:length]),
    ]
    assert as_tuples(read_all(data)) == expected
    assert as_tuples(read_bytewise(data)) == expected


# ------------------------------------------------------------------ violations


def test_fmt3_or_fmt2_without_previous_header() -> None:
    with pytest.raises(ProtocolError):
        read_all(b"\xc4abc")
    with pytest.raises(ProtocolError):
        read_all(encode_header(2, 4, 1) + b"abc")


def test_fmt1_as_first_header_is_tolerated() -> None:
    assert as_tuples(read_all(encode_header(1, 4, 5, 1, 8) + b"x")) == [(4, 8, 0, 5, b"x")]


def test_new_header_mid_message_is_refused() -> None:
    data = (
        encode_message(6, 9, 1, 0, bytes(300), 128)[:140] + encode_header(0, 6, 0, 1, 9, 1) + b"x"
    )
    with pytest.raises(ProtocolError, match="mid-message"):
        read_all(data)


def test_message_size_bound() -> None:
    reader = ChunkReader(
        max_message_size=1000, max_chunk_size=65536, max_chunk_streams=8, max_partial_bytes=5000
    )
    with pytest.raises(ProtocolError, match="exceeds"):
        read_all(encode_header(0, 4, 0, 1001, 8, 1), reader)


def test_partial_bytes_bound_across_chunk_streams() -> None:
    reader = ChunkReader(
        max_message_size=1000, max_chunk_size=65536, max_chunk_streams=8, max_partial_bytes=2500
    )
    data = b"".join(encode_message(c, 9, 1, 0, bytes(1000), 128)[: 12 + 128] for c in (4, 5, 6))
    with pytest.raises(ProtocolError, match="partially"):
        read_all(data, reader)


def test_chunk_stream_count_bound() -> None:
    reader = ChunkReader(
        max_message_size=1000, max_chunk_size=65536, max_chunk_streams=3, max_partial_bytes=5000
    )
    data = b"".join(encode_message(c, 8, 1, 0, b"x", 128) for c in (3, 4, 5, 6))
    out: list[Message] = []
    with pytest.raises(ProtocolError, match="chunk streams"):
        reader.feed(data, out)
    assert len(out) == 3  # delivered before the violation


@pytest.mark.parametrize("size", [0, 65537, 0x80000000])
def test_set_chunk_size_out_of_bounds(size: int) -> None:
    reader = ChunkReader(
        max_message_size=1000, max_chunk_size=65536, max_chunk_streams=3, max_partial_bytes=5000
    )
    with pytest.raises(ProtocolError, match="chunk size"):
        read_all(encode_message(2, 1, 0, 0, struct.pack(">I", size), 128), reader)


def test_short_set_chunk_size() -> None:
    with pytest.raises(ProtocolError, match="shorter"):
        read_all(encode_message(2, 1, 0, 0, b"\x00\x10", 128))


def test_pending_header_is_small() -> None:
    """Only an incomplete header is carried over, so byte-wise feeding stays linear."""
    reader = new_reader()
    wire = encode_message(65599, 9, 1, 0x7FFFFFFF, bytes(1000), 128)
    out: list[Message] = []
    for i in range(17):
        reader.feed(wire[i : i + 1], out)
    assert reader.buffered <= 18
    reader.feed(wire[17:], out)
    assert out[0].payload == bytes(1000)
