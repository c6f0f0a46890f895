"""Fakes shared by the pusher and manager tests: a publisher that records what it is
sent and can stop reading like a stuck peer, and a live stream on the real bus."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest

from server.bus import Stream
from server.media.frame import CodecConfig, Frame
from server.push.ports import BatchWriter, FrameByFrame
from tests.unit.bus.helpers import AUDIO_CONFIG, VIDEO_CONFIG, audio, video


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
