"""Fakes shared by the pusher and manager tests: a publisher that records what it is
sent and can stop reading like a stuck peer, and a live stream on the real bus.

Two publishers record the same way: :class:`FakePublisher` takes frames one by one
(as SRT does, through a pusher's own feed), :class:`SharedFakePublisher` takes the
pre-chunked bytes of a fanout (as RTMP does) and records what they carry, decoded
from the wire, so the same tests check both paths."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest

from server.bus import Stream
from server.media.flv import build_tag_body
from server.media.frame import TICKS_PER_MS, CodecConfig, Frame, TrackKind
from server.protocols.rtmp.chunk import ChunkReader, Message
from server.protocols.rtmp.messages import MessageType
from server.push.ports import BatchWriter, FrameByFrame
from tests.unit.bus.helpers import AUDIO_CONFIG, VIDEO_CONFIG, VIDEO_CONFIG_2, audio, video


class FakePublisher:
    def __init__(self, url: str = "") -> None:
        self.url = url
        self.sent: list[tuple[str, object]] = []
        self.writable = True
        self.error: Exception | None = None
        self.closed = False
        self.reading = asyncio.Event()
        self.reading.set()

    @property
    def bytes_sent(self) -> int:
        return 100 * len(self.sent)

    def send_metadata(self, metadata: Mapping[str, float | str | bool]) -> None:
        self.sent.append(("meta", dict(metadata)))

    def send_config(self, config: CodecConfig, timestamp_ms: int = 0) -> None:
        self.sent.append(("config", config))

    def send_frame(self, frame: Frame) -> None:
        if self.error is not None:
            raise self.error
        self.sent.append(("frame", frame))

    def batch_writer(self) -> BatchWriter:
        return FrameByFrame(self)

    async def drain(self) -> None:
        await self.reading.wait()

    async def close(self, grace: float = 5.0) -> None:
        self.closed = True

    def stall(self) -> None:
        """Stop reading: the transport is full and ``drain()`` waits."""
        self.writable = False
        self.reading.clear()

    def resume(self) -> None:
        self.writable = True
        self.reading.set()

    def frames(self) -> list[Frame]:
        return [f for kind, f in self.sent if kind == "frame" and isinstance(f, Frame)]


_CONFIGS = {build_tag_body(c): c for c in (VIDEO_CONFIG, VIDEO_CONFIG_2, AUDIO_CONFIG)}


def decode(message: Message) -> tuple[str, object]:
    """A media message of the fanout back as ("config", config) or ("frame", frame)
    (legacy H.264/AAC tag bodies, as the bus helpers' frames make)."""
    body, dts = message.payload, message.timestamp * TICKS_PER_MS
    if body in _CONFIGS:
        return "config", _CONFIGS[body]
    if message.type_id == MessageType.VIDEO:
        assert body[1] == 1, "an AVC NALU packet"
        cts = int.from_bytes(body[2:5], "big", signed=True) * TICKS_PER_MS
        frame = Frame(TrackKind.VIDEO, "h264", dts, dts + cts, body[0] >> 4 == 1, body[5:])
        return "frame", frame
    assert message.type_id == MessageType.AUDIO and body[1] == 1, "an AAC raw packet"
    return "frame", Frame(TrackKind.AUDIO, "aac", dts, dts, True, body[2:])


class SharedFakePublisher(FakePublisher):
    """A :class:`~server.push.ports.SharedSink`: decodes what it is written."""

    stream_id = 1
    chunk_size = 4096

    def __init__(self, url: str = "") -> None:
        super().__init__(url)
        self.writes = 0
        self.chunks = ChunkReader(
            max_message_size=16 << 20,
            max_chunk_size=1 << 20,
            max_chunk_streams=64,
            max_partial_bytes=64 << 20,
        )
        self.chunks.chunk_size = self.chunk_size

    def send_shared(self, wire: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.writes += 1
        messages: list[Message] = []
        self.chunks.feed(wire, messages)
        assert self.chunks.buffered == 0, "a write ends on a message boundary"
        for message in messages:
            assert message.stream_id == self.stream_id
            self.sent.append(decode(message))


async def until(check: Callable[[], bool], within: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail("condition not reached")
        await asyncio.sleep(0.01)


def live_stream() -> Stream:
    stream = Stream("ls_1")
    stream.set_config(VIDEO_CONFIG)
    stream.set_config(AUDIO_CONFIG)
    return stream


def publish_gop(stream: Stream, start: int, count: int = 30) -> None:
    """Video and audio frames ``start`` .. ``start + count - 1``, keyframes every 30."""
    for n in range(start, start + count):
        stream.publish(video(n, key=n % 30 == 0, size=400))
        stream.publish(audio(n))
