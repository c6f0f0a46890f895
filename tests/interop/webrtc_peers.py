"""aiortc peers for the WHIP/WHEP tests: a publisher of pre-encoded files, a viewer.

The publisher sends H.264 and Opus that ffmpeg encoded beforehand, as packets (aiortc's
pass-through path), paced in real time: a real WebRTC peer over real UDP, DTLS and
SRTP, without the cost of encoding in the test.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack


def make_media(directory: Path, seconds: int = 20, gop: int = 30) -> tuple[Path, Path]:
    """An Annex B H.264 file (baseline, no B-frames, like WebRTC encoders) and an Ogg Opus."""
    video, audio = directory / "v.h264", directory / "a.ogg"
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-y", "-f", "lavfi",
            "-i", f"testsrc2=size=320x240:rate=30:duration={seconds}",
            "-c:v", "libx264", "-profile:v", "baseline", "-bf", "0", "-g", str(gop),
            "-preset", "ultrafast", "-tune", "zerolatency", "-f", "h264", str(video),
        ],
        check=True,
    )  # fmt: skip
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-y", "-f", "lavfi",
            "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
            "-ac", "2", "-c:a", "libopus", "-b:a", "64k", str(audio),
        ],
        check=True,
    )  # fmt: skip
    return video, audio


class FileTrack(MediaStreamTrack):
    """Packets of one file, sent at their own pace (the first at once); with ``loop``,
    the file again from its start when it ends (for as long as a benchmark needs)."""

    def __init__(self, kind: str, path: Path, rate: int, loop: bool = False) -> None:
        super().__init__()
        self.kind = kind
        self._path = path
        self._repeat = loop  # not _loop: aiortc's MediaStreamTrack keeps its event loop there
        self._container = av.open(str(path))
        self._packets = self._container.demux(self._container.streams[0])
        self._rate = rate
        self._step = 3000 if kind == "video" else 960  # 30 fps at 90 kHz / 20 ms at 48 kHz
        self._count = 0
        self._start: float | None = None
        self.sent = 0

    async def recv(self) -> Any:
        while (packet := self._next_packet()) is not None:
            if packet.size == 0:
                continue
            pts = self._count * self._step
            self._count += 1
            if self._start is None:
                self._start = time.monotonic()
            delay = self._start + pts / self._rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            out = av.Packet(bytes(packet))
            out.pts = pts
            out.time_base = Fraction(1, self._rate)
            self.sent += 1
            return out
        self.stop()
        raise MediaStreamError

    def _next_packet(self) -> Any:
        packet = next(self._packets, None)
        if packet is None and self._repeat:
            self._container.close()
            self._container = av.open(str(self._path))
            self._packets = self._container.demux(self._container.streams[0])
            packet = next(self._packets, None)
        return packet


@dataclass
class Answer:
    status: int
    body: str
    location: str | None


def post_sdp(url: str, sdp: str, key: str | None = None) -> Answer:
    headers = {"Content-Type": "application/sdp"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=sdp.encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return Answer(response.status, response.read().decode(), response.headers["Location"])
    except urllib.error.HTTPError as err:
        return Answer(err.code, err.read().decode(), None)


def delete(url: str) -> int:
    request = urllib.request.Request(url, method="DELETE")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


@dataclass
class WhipPublisher:
    """A WHIP publisher of ``video`` (and ``audio``); ``answer`` holds the HTTP outcome."""

    base: str
    key: str
    video: Path
    audio: Path | None
    pc: RTCPeerConnection = field(
        default_factory=lambda: RTCPeerConnection(RTCConfiguration(iceServers=[]))
    )
    answer: Answer | None = None
    tracks: list[FileTrack] = field(default_factory=list)
    loop: bool = False

    async def start(self) -> Answer:
        self.tracks.append(FileTrack("video", self.video, 90_000, self.loop))
        # no codec preference: aiortc offers VP8 first, as browsers do; the server
        # must answer H.264
        self.pc.addTransceiver(self.tracks[-1], direction="sendonly")
        if self.audio is not None:
            self.tracks.append(FileTrack("audio", self.audio, 48_000, self.loop))
            self.pc.addTransceiver(self.tracks[-1], direction="sendonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = self.pc.localDescription.sdp
        loop = asyncio.get_running_loop()
        url = f"{self.base}/whip/live"
        self.answer = await loop.run_in_executor(None, post_sdp, url, offer, self.key)
        if self.answer.status == 201:
            await self.pc.setRemoteDescription(RTCSessionDescription(self.answer.body, "answer"))
        return self.answer

    async def close(self) -> None:
        await self.pc.close()


@dataclass
class WhepViewer:
    """A WHEP viewer that decodes what it receives and counts the frames."""

    url: str
    pc: RTCPeerConnection = field(
        default_factory=lambda: RTCPeerConnection(RTCConfiguration(iceServers=[]))
    )
    answer: Answer | None = None
    frames: dict[str, int] = field(default_factory=lambda: {"video": 0, "audio": 0})
    first_frame_at: float | None = None
    size: tuple[int, int] | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self, audio: bool = True) -> Answer:
        self.pc.addTransceiver("video", direction="recvonly")
        if audio:
            self.pc.addTransceiver("audio", direction="recvonly")
        self.pc.on("track", self._track)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        loop = asyncio.get_running_loop()
        self.answer = await loop.run_in_executor(
            None, post_sdp, self.url, self.pc.localDescription.sdp
        )
        if self.answer.status == 201:
            await self.pc.setRemoteDescription(RTCSessionDescription(self.answer.body, "answer"))
        return self.answer

    def _track(self, track: MediaStreamTrack) -> None:
        self._tasks.append(asyncio.ensure_future(self._count(track)))

    async def _count(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                self.frames[track.kind] += 1
                if isinstance(frame, av.VideoFrame):
                    self.size = (frame.width, frame.height)
                    if self.first_frame_at is None:
                        self.first_frame_at = time.monotonic()
        except MediaStreamError:
            return

    async def close(self) -> None:
        await self.pc.close()
        for task in self._tasks:
            task.cancel()


async def _publish_forever(base: str, key: str, video: Path, audio: Path) -> None:
    publisher = WhipPublisher(base, key, video, audio, loop=True)
    answer = await publisher.start()
    print(answer.status, flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    # A publisher in its own process (its media looped), for tests that kill it without a
    # goodbye and for the benchmark, whose CPU it must not share.
    import sys

    asyncio.run(_publish_forever(sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])))
