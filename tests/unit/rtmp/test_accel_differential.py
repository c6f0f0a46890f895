"""Differential fuzzing: the compiled chunk reader (and the whole RTMP connection around
it) against its pure-Python source.

The same random chunk streams (valid ones with every header form, interleaved chunk
streams, extended timestamps and Set Chunk Size; then corrupted, truncated and split at
random read boundaries) go to both readers. After every read they must have handed out
the same messages, hold the same state, and fail with the same error: only
``ProtocolError`` may escape, never an IndexError or a TypeError of the compiled code.
"""

from __future__ import annotations

import dataclasses
import itertools
import struct
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import accel
from server.protocols.rtmp import ProtocolError
from server.protocols.rtmp import chunk as default_chunk
from server.protocols.rtmp import connection as default_connection
from server.protocols.rtmp import events as default_events
from server.protocols.rtmp.budget import ByteBudget
from server.protocols.rtmp.chunk import encode_basic_header, encode_header, encode_message
from server.protocols.rtmp.messages import MessageType
from tests.accel_twins import pure_twins

from .helpers import C0C1, C2, cmd

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CSIDS = [2, 3, 4, 6, 63, 64, 319, 320, 65599]
TYPES = [1, 2, 8, 9, 18, 20]


@pytest.fixture(scope="module")
def pure_chunk() -> ModuleType:
    if accel.summary() == accel.PURE and not accel.is_compiled(default_chunk):
        pytest.skip("no compiled build to compare with (pip install -e . with a compiler)")
    return pure_twins()["server.protocols.rtmp.chunk"]


def _chunks(csid: int, type_id: int, msid: int, ts: int, payload: bytes, size: int) -> list[bytes]:
    """One message as its chunks (fmt 0, then fmt 3 repeating an extended timestamp)."""
    head = encode_header(0, csid, ts, len(payload), type_id, msid)
    cont = encode_basic_header(3, csid) + (struct.pack(">I", ts) if ts >= 0xFFFFFF else b"")
    pieces = [payload[i : i + size] for i in range(0, len(payload), size)] or [b""]
    return [head + pieces[0], *(cont + piece for piece in pieces[1:])]


@st.composite
def message_chunks(draw: st.DrawFn) -> list[bytes]:
    """Valid chunk runs: messages (Set Chunk Size among them) interleaved chunk by chunk,
    plus raw headers of every form to reach fmt 1/2/3 new-message paths."""
    size = 128
    runs: list[list[bytes]] = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.integers(0, 9))
        csid = draw(st.sampled_from(CSIDS))
        if kind == 0:  # Set Chunk Size (sometimes outside the reader's bound)
            new = draw(st.sampled_from([1, 7, 64, 200, 300, 301, 0]))
            runs.append(_chunks(2, 1, 0, 0, struct.pack(">I", new), size))
            size = new if 1 <= new <= 300 else size
            continue
        if kind == 1:  # a raw header of any form and a payload of any length
            fmt = draw(st.integers(0, 3))
            ts = draw(st.sampled_from([0, 5, 0xFFFFFE, 0xFFFFFF, 0x1000000]))
            header = encode_header(fmt, csid, ts, draw(st.integers(0, 40)), 9, 1)
            runs.append([header + draw(st.binary(max_size=40))])
            continue
        length = draw(st.integers(0, 700))
        ts = draw(st.sampled_from([0, 33, 0xFFFFFE, 0xFFFFFF, 0xFFFFFFFF]))
        payload = draw(st.binary(min_size=length, max_size=length))
        type_id = draw(st.sampled_from(TYPES[2:]))
        runs.append(_chunks(csid, type_id, 1, ts, payload, size))
    out: list[bytes] = []
    while any(runs):  # interleave: take the next chunk of a random unfinished run
        live = [run for run in runs if run]
        out.append(live[draw(st.integers(0, len(live) - 1))].pop(0))
    return out


@st.composite
def wire(draw: st.DrawFn) -> list[bytes]:
    """The stream, maybe corrupted, cut into reads at random points."""
    data = bytearray(b"".join(draw(message_chunks())))
    for _ in range(draw(st.integers(0, 3))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        edit = draw(st.integers(0, 2))
        if edit == 0:
            data[at] ^= draw(st.integers(1, 255))
        elif edit == 1:
            del data[at : at + draw(st.integers(1, 8))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
    cuts = sorted(set(draw(st.lists(st.integers(0, len(data)), max_size=12))))
    bounds = [0, *cuts, len(data)]
    return [bytes(data[a:b]) for a, b in itertools.pairwise(bounds)]


def _run(module: ModuleType, reads: list[bytes], guaranteed: int) -> list[Any]:
    """What one reader did, read by read: messages, state, and the error if any."""
    budget = ByteBudget(900)  # below max_partial_bytes: both limits get hit
    reader = module.ChunkReader(
        max_message_size=1000,
        max_chunk_size=300,
        max_chunk_streams=4,
        max_partial_bytes=1200,
        budget=budget,
        guaranteed_bytes=guaranteed,
    )
    trace: list[Any] = []
    for data in reads:
        out: list[Any] = []
        try:
            reader.feed(data, out)
        except ProtocolError as exc:
            error: str | None = str(exc)
        else:
            error = None
        messages = [(m.csid, m.type_id, m.stream_id, m.timestamp, m.payload) for m in out]
        state = (reader.buffered, reader.reserved, reader.chunk_size, budget.used)
        trace.append((messages, state, error))
        if error is not None:
            reader.release()
            trace.append(("released", reader.reserved, budget.used))
            break
    return trace


@FUZZ
@given(wire(), st.sampled_from([0, 200]))
def test_same_messages_state_and_errors(
    pure_chunk: ModuleType, reads: list[bytes], guaranteed: int
) -> None:
    assert _run(default_chunk, reads, guaranteed) == _run(pure_chunk, reads, guaranteed)


@FUZZ
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_same_outcome_on_garbage(pure_chunk: ModuleType, reads: list[bytes]) -> None:
    assert _run(default_chunk, reads, 0) == _run(pure_chunk, reads, 0)


def test_the_compiled_reader_is_the_one_compared(pure_chunk: ModuleType) -> None:
    """The comparison is not the pure reader against itself."""
    assert accel.is_compiled(default_chunk)
    assert not accel.is_compiled(pure_chunk)
    assert default_chunk.ChunkReader is not pure_chunk.ChunkReader


@pytest.mark.parametrize("data", [b"\x03" + bytes(11) + b"x", b"\xc7", b"\x02\x00"])
def test_writer_is_identical(pure_chunk: ModuleType, data: bytes) -> None:
    for size in (1, 128, 4096):
        args = (5, 9, 1, 0x1000000, data * 300, size)
        assert default_chunk.encode_message(*args) == pure_chunk.encode_message(*args)


# ------------------------------------------------------------------ whole connection

_PUBLISH = b"".join(
    encode_message(3, MessageType.COMMAND_AMF0, msid, 0, cmd(*command), 128)
    for msid, command in (
        (0, ("connect", 1, {"app": "live", "tcUrl": "rtmp://127.0.0.1/live"})),
        (0, ("createStream", 2, None)),
        (1, ("publish", 3, None, "key", "live")),
    )
)


@st.composite
def publisher(draw: st.DrawFn) -> list[bytes]:
    """A publisher's bytes after the handshake: connect, publish, then media and data
    messages (chunk size changes among them), maybe corrupted, cut into reads."""
    parts = [_PUBLISH]
    size = 128
    for _ in range(draw(st.integers(1, 8))):
        type_id = draw(st.sampled_from([1, 5, 8, 8, 9, 9, 9, 18]))
        if type_id == 1:
            size = draw(st.sampled_from([64, 4096, 60000]))
            body = struct.pack(">I", size)
            parts.append(encode_message(2, 1, 0, 0, body, 128 if not parts else size))
            continue
        body = draw(st.binary(max_size=300))
        if type_id == 5:  # Window Acknowledgement Size: the server then acknowledges
            body = struct.pack(">I", draw(st.sampled_from([100, 2_500_000])))
        if type_id == 9 and draw(st.booleans()):
            body = b"\x17\x01\x00\x00\x00" + struct.pack(">I", len(body)) + body
        ts = draw(st.sampled_from([0, 40, 0xFFFFFF, 0x1000000]))
        parts.append(encode_message(draw(st.sampled_from([4, 6, 70])), type_id, 1, ts, body, size))
    data = bytearray(b"".join(parts))
    if draw(st.booleans()):
        at = draw(st.integers(len(_PUBLISH), len(data) - 1)) if len(data) > len(_PUBLISH) else 0
        data[at] ^= draw(st.integers(1, 255))
    cuts = sorted(set(draw(st.lists(st.integers(0, len(data)), max_size=8))))
    bounds = [0, *cuts, len(data)]
    return [bytes(data[a:b]) for a, b in itertools.pairwise(bounds)]


def _drive(connection: ModuleType, events_module: ModuleType, reads: list[bytes]) -> list[Any]:
    """A server connection through the handshake, then the reads; what it did each time
    (``events_module``: the twin of the events the connection reports)."""
    conn = connection.RtmpConnection(connection.Role.SERVER, handshake_random=bytes(1528))
    trace: list[Any] = []
    for data in [C0C1, C2, *reads]:
        conn.receive_data(data, 1.0)
        events: list[Any] = []
        while batch := conn.events():  # accepting replays the messages held back
            events += batch
            for event in batch:
                if conn.closed:  # failed later in the same read: nothing to accept
                    break
                if isinstance(event, events_module.ConnectRequested):
                    conn.accept_connect()
                elif isinstance(event, events_module.PublishRequested):
                    conn.accept_publish(event.stream_id)
        trace.append(([plain(e) for e in events], conn.data_to_send(), conn.closed, conn.buffered))
    return trace


def plain(event: Any) -> tuple[str, tuple[Any, ...]]:
    """An event as its class name and field values: the compiled and the pure twin of
    an event class are different classes, so their instances never compare equal."""
    values = tuple(getattr(event, f.name) for f in dataclasses.fields(event))
    return type(event).__qualname__, values


@settings(FUZZ, max_examples=100)
@given(publisher())
def test_whole_connection_same_events_and_output(reads: list[bytes]) -> None:
    twins = pure_twins()
    if not accel.is_compiled(default_connection):
        pytest.skip("no compiled build to compare with (pip install -e . with a compiler)")
    pure_connection = twins["server.protocols.rtmp.connection"]
    pure_events = twins["server.protocols.rtmp.events"]
    assert _drive(default_connection, default_events, reads) == _drive(
        pure_connection, pure_events, reads
    )
