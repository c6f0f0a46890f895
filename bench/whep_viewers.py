"""WHEP viewers for the ``whip`` benchmark, in their own process (their CPU is not the
server's): ``python -m bench.whep_viewers URL COUNT``.

Each viewer is an aiortc peer over real UDP, DTLS and SRTP that receives video and
audio and counts the bytes of the frames it reassembles, without decoding them (its
receivers' decoder queues are replaced, :func:`tap_encoded_frames`), so that a small
machine can hold many.
Protocol on stdin/stdout, one JSON line per event: ``ready`` once every viewer has its
201 (or ``failed`` with the statuses), then ``mark`` → the bytes received so far, and
``stop`` → ``done``.
"""

from __future__ import annotations

import asyncio
import json
import queue
import sys
from collections.abc import Callable
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.jitterbuffer import JitterFrame

from tests.interop.webrtc_peers import post_sdp


class _EncodedFrames(queue.Queue[Any]):
    """Stands in for a receiver's decoder queue: complete encoded frames go to ``sink``
    on the event loop; only the end marker reaches the (idle) decoder thread."""

    def __init__(self, sink: Callable[[JitterFrame], None]) -> None:
        super().__init__()
        self._sink = sink

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            super().put(None)
            return
        _codec, frame = item
        self._sink(frame)


def tap_encoded_frames(receiver: RTCRtpReceiver, sink: Callable[[JitterFrame], None]) -> None:
    """Route a receiver's reassembled frames to ``sink`` instead of its decoder (a
    private attribute of the pinned aiortc; checked here)."""
    attribute = "_RTCRtpReceiver__decoder_queue"
    if not hasattr(receiver, attribute):
        raise RuntimeError("this aiortc version has no decoder queue to tap")
    setattr(receiver, attribute, _EncodedFrames(sink))


class Viewer:
    def __init__(self, url: str) -> None:
        self.url = url
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.bytes = 0
        self.frames = 0

    def _count(self, frame: JitterFrame) -> None:
        self.bytes += len(frame.data)
        self.frames += 1

    async def start(self) -> int:
        for kind in ("video", "audio"):
            tap_encoded_frames(
                self.pc.addTransceiver(kind, direction="recvonly").receiver, self._count
            )
        await self.pc.setLocalDescription(await self.pc.createOffer())
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(None, post_sdp, self.url, self.pc.localDescription.sdp)
        if answer.status != 201:
            return answer.status
        await self.pc.setRemoteDescription(RTCSessionDescription(answer.body, "answer"))
        return 201


def _say(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def main(url: str, count: int) -> None:
    viewers = [Viewer(url) for _ in range(count)]
    statuses = [await viewer.start() for viewer in viewers]  # one at a time, as people join
    if any(status != 201 for status in statuses):
        _say("failed", statuses=statuses)
        return
    _say("ready", viewers=count)
    loop = asyncio.get_running_loop()
    while line := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
        if line == "mark":
            _say(
                "mark",
                bytes=sum(v.bytes for v in viewers),
                frames=sum(v.frames for v in viewers),
                connected=sum(v.pc.connectionState == "connected" for v in viewers),
            )
        elif line == "stop":
            break
    await asyncio.gather(*(viewer.pc.close() for viewer in viewers), return_exceptions=True)
    _say("done")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
