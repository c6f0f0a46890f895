"""A stream drops to passthrough when its encoder fails or its worker falls behind real
time: a warning in its health, a count in the metrics, its renditions gone, and the
source untouched. The worker process is replaced by a fake that answers as told."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.bus import Stream, StreamGrant
from server.media.frame import Frame, TrackKind
from server.settings import Rung, TranscodeSettings
from server.transcode import transcoder
from server.transcode.messages import Failed, Ready
from server.transcode.service import TranscodeService
from tests.unit.bus.helpers import VIDEO_CONFIG, video

SETTINGS = TranscodeSettings(
    ladders={"standard": (Rung(name="360p", height=360, video_bitrate=800_000),)},
    max_lag_seconds=1.0,
    max_restarts=0,
)


class FakeWorker:
    """Says ``Ready``, then either fails at the first frame or never answers again."""

    mode = "stuck"

    made: list[FakeWorker] = []

    def __init__(self, target: Any, *args: Any, name: str) -> None:
        FakeWorker.made.append(self)
        self.sent: list[object] = []
        self._first = True
        self._answer = asyncio.Event()

    async def start(self) -> None:
        return None

    def send(self, message: object) -> None:
        self.sent.append(message)
        if self.mode == "failing":
            self._answer.set()

    async def recv(self) -> object:
        if self._first:
            self._first = False
            return Ready((VIDEO_CONFIG,), None)
        await self._answer.wait()
        return Failed("transcoding failed: the encoder gave up")

    def kill(self) -> None:
        return None

    async def stop(self, grace: float = 2.0) -> None:
        return None


async def _stream(stream: Stream, frames: int) -> None:
    """Frames every 10 ms: the worker's window fills fast, then the wall clock runs."""
    stream.announce_tracks(frozenset({TrackKind.VIDEO}))
    stream.set_config(VIDEO_CONFIG)
    for n in range(frames):
        stream.publish(video(n, key=n % 30 == 0))
        await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("failing", "the encoder gave up"),
        ("stuck", "transcoding fell behind real time for over 1 s"),
    ],
)
async def test_the_stream_falls_back_to_passthrough_and_says_why(
    monkeypatch: pytest.MonkeyPatch, mode: str, reason: str
) -> None:
    monkeypatch.setattr(FakeWorker, "mode", mode)
    monkeypatch.setattr(transcoder, "WorkerProcess", FakeWorker)
    service = TranscodeService(SETTINGS)
    stream = Stream("ls_1")
    service.stream_opened(StreamGrant("ls_1", "env", True, 0, quality="standard"), stream, "s")
    await _stream(stream, 200)
    health = service.health("ls_1")
    assert health.renditions == () and len(health.warnings) == 1, health
    assert health.warnings[0].startswith("renditions unavailable, playing the source only")
    assert reason in health.warnings[0]
    assert service.fallbacks["failure"] == 1
    assert service.rendition_stream("ls_1", "360p") is None  # its bus stream is gone
    assert not stream.ended and [r.kind for r in stream.stats().readers] == []
    await service.close()


async def test_a_worker_behind_still_gets_every_keyframe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the window only the pictures between keyframes are dropped: every rung keeps
    a keyframe (a segment boundary) wherever the source has one, so its media sequence
    numbers stay the source's."""
    monkeypatch.setattr(FakeWorker, "mode", "stuck")
    monkeypatch.setattr(FakeWorker, "made", [])
    monkeypatch.setattr(transcoder, "WorkerProcess", FakeWorker)
    service = TranscodeService(SETTINGS)
    stream = Stream("ls_1")
    service.stream_opened(StreamGrant("ls_1", "env", True, 0, quality="standard"), stream, "s")
    await _stream(stream, 95)
    (worker,) = FakeWorker.made
    sent = [m.pts // 3000 for m in worker.sent if isinstance(m, Frame)]
    assert sent == [*range(1, transcoder.WINDOW + 1), 60, 90], sent  # 0 opened the job
    await service.close()
