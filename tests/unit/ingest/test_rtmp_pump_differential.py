"""Differential fuzzing: the compiled RTMP ingest read path (connection, events, pump,
FLV parser, claim, meter, bus) against its pure-Python source.

The same random publisher (connect, publish, then video, audio and data messages:
FFmpeg's real tags, mutated ones and random bodies behind every FLV tag header form,
with chunk size changes, unpublish, a corrupted byte and random read boundaries) goes
through both. After every read they must have handed out the same events and
malformed tags, written the same bytes, published the same frames and configs, metered
the same bytes and asked the same of the manager; only the twin's classes differ.
"""

from __future__ import annotations

import itertools
import struct
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import accel
from server.bus import PlanLimits
from server.ingest import rtmp_pump as default_pump
from server.protocols.rtmp import amf0
from server.protocols.rtmp.chunk import encode_message
from server.protocols.rtmp.messages import MessageType
from tests.accel_twins import pure_twins
from tests.unit.rtmp.helpers import C0C1, C2

from .pump_driver import PUBLISH, Ingest, Twins, comparable, real_tags

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PREFIXES = [
    b"",
    b"\x17\x00\x00\x00\x00",  # AVC sequence header
    b"\x17\x01\x00\x00\x00",  # AVC frame
    b"\x27\x01\xff\xff\xdf",  # AVC inter frame, negative composition offset
    b"\x17\x02\x00\x00\x00",  # AVC end of sequence
    b"\x90hvc1",
    b"\x93av01",
    b"\xaf\x00",  # AAC config
    b"\xaf\x01",  # AAC raw
    b"\x9fmp4a",
]


@pytest.fixture(scope="module")
def pure() -> Twins:
    if not accel.is_compiled(default_pump):
        pytest.skip("no compiled build to compare with (pip install -e . with a compiler)")
    return Twins.of(pure_twins())


def _default() -> Twins:
    return Twins.of(
        {
            name: sys.modules[name]
            for name in (
                "server.protocols.rtmp.connection",
                "server.ingest.rtmp_pump",
                "server.ingest.claim",
                "server.ingest.meter",
                "server.bus.registry",
                "server.protocols.rtmp.events",
            )
        }
    )


@st.composite
def body(draw: st.DrawFn, type_id: int) -> bytes:
    if type_id == int(MessageType.DATA_AMF0):
        name = draw(st.sampled_from(["onMetaData", "onTextData", "onCuePoint"]))
        values = amf0.encode_values("@setDataFrame", name, {"width": 160.0, "x": "y"})
        return values if draw(st.booleans()) else values[: draw(st.integers(0, len(values)))]
    tags = [tag[2] for tag in real_tags() if tag[0] == type_id]
    how = draw(st.integers(0, 3))
    if how <= 1:  # a real tag, in the order a publisher sends them more often than not
        data = bytearray(tags[draw(st.integers(0, len(tags) - 1))])
        if how == 1 and data:
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= draw(st.integers(1, 255))
        return bytes(data)
    return draw(st.sampled_from(PREFIXES)) + draw(st.binary(max_size=40))


@st.composite
def publisher(draw: st.DrawFn) -> list[bytes]:
    """The whole publish after the handshake, maybe corrupted, cut into reads."""
    parts = [PUBLISH]
    size = 128
    video = [tag for tag in real_tags() if tag[0] == int(MessageType.VIDEO)]
    audio = [tag for tag in real_tags() if tag[0] == int(MessageType.AUDIO)]
    if draw(st.booleans()):  # the sequence headers first, as encoders do
        parts += [encode_message(6, 9, 1, 0, video[0][2], size)]
        parts += [encode_message(4, 8, 1, 0, audio[0][2], size)]
    for _ in range(draw(st.integers(1, 12))):
        type_id = draw(st.sampled_from([1, 8, 8, 9, 9, 9, 18, 20]))
        if type_id == 1:  # Set Chunk Size
            new = draw(st.sampled_from([64, 4096, 60000]))
            parts.append(encode_message(2, 1, 0, 0, struct.pack(">I", new), size))
            size = new
            continue
        if type_id == 20:  # deleteStream: the publisher stops
            command = amf0.encode_values("deleteStream", 4.0, None, 1.0)
            parts.append(encode_message(3, 20, 0, 0, command, size))
            continue
        ts = draw(st.sampled_from([0, 40, 80, 0xFFFFFF, 0x1000000]))
        csid = {8: 4, 9: 6, 18: 5}[type_id]
        parts.append(encode_message(csid, type_id, 1, ts, draw(body(type_id)), size))
    data = bytearray(b"".join(parts))
    if draw(st.integers(0, 3)) == 0:
        at = draw(st.integers(len(PUBLISH), len(data) - 1))
        data[at] ^= draw(st.integers(1, 255))
    cuts = sorted(set(draw(st.lists(st.integers(0, len(data)), max_size=8))))
    bounds = [0, *cuts, len(data)]
    return [bytes(data[a:b]) for a, b in itertools.pairwise(bounds)]


def _run(twins: Twins, limits: PlanLimits | None, reads: list[bytes]) -> list[Any]:
    run = Ingest(twins, limits)
    trace: list[Any] = [[comparable(e) for e in run.feed(data)] for data in (C0C1, C2)]
    for data in reads:
        handed = [comparable(e) for e in run.feed(data)]
        stats = run.stream.stats()
        meter = run.live.meter
        trace.append(
            (
                handed,
                run.conn.data_to_send(),
                run.conn.closed,
                run.items(),
                (stats.frames_published, stats.bytes_published, stats.gop_items),
                (meter.bytes_in, meter.video_frames, run.live.session_bytes, run.live.live),
                run.pump.claim is None,
                list(run.owner.asked),
            )
        )
    return trace


_LIMITS = st.none() | st.just(PlanLimits(100, 1000, 60.0, 10**9))


@FUZZ
@given(_LIMITS, publisher())
def test_same_events_frames_and_output(
    pure: Twins, limits: PlanLimits | None, reads: list[bytes]
) -> None:
    assert _run(_default(), limits, reads) == _run(pure, limits, reads)


def test_the_compiled_read_path_is_the_one_compared(pure: Twins) -> None:
    default = _default()
    for module in (default.pump, default.events, default.connection, default.claim):
        assert accel.is_compiled(module)
    for module in (pure.pump, pure.events, pure.connection, pure.claim):
        assert not accel.is_compiled(module)
    assert pure.pump.RtmpIngestPump is not default.pump.RtmpIngestPump
    assert pure.events.MediaReceived is not default.events.MediaReceived
