"""Opus from a WHIP publisher, transcoded once to AAC for HLS, RTMP/SRT and recording.

Decoding and encoding run in a worker process (the design rule for CPU-heavy media
work): the event loop only hands Opus packets over and takes AAC frames back. The
child stamps AAC from a sample counter (``AudioEncoder``); a gap in the Opus
timeline (loss, DTX) is filled with encoded silence so audio stays on the video's
clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from fractions import Fraction
from multiprocessing.connection import Connection

import av

from server.encode.audio import AudioEncoder
from server.encode.process import WorkerGone, WorkerProcess
from server.encode.profile import AudioProfile
from server.media.frame import TIMEBASE, CodecConfig, Frame

log = logging.getLogger("relaycast.webrtc")

_ConfigSink = Callable[[CodecConfig], None]
_FrameSink = Callable[[Frame], None]

OPUS_RATE = 48_000
_GAP_TICKS = TIMEBASE // 10
"""A jump in the Opus timeline beyond this is filled with silence (100 ms: five frames)."""


def opus_to_aac(conn: Connection, bitrate: int) -> None:
    """Worker target: ``(pts_ticks, opus_packet)`` in; the AAC config once, then lists
    of AAC Frames out. EOF on the pipe ends it."""
    decoder = av.CodecContext.create("libopus", "r")
    assert isinstance(decoder, av.AudioCodecContext)
    decoder.format = "s16"
    decoder.layout = "stereo"
    decoder.sample_rate = OPUS_RATE
    encoder = AudioEncoder(AudioProfile(bitrate=bitrate))
    conn.send(encoder.config)
    expected: int | None = None
    while True:
        pts, payload = conn.recv()
        packet = av.Packet(payload)
        packet.pts = pts * OPUS_RATE // TIMEBASE
        packet.time_base = Fraction(1, OPUS_RATE)
        try:
            decoded = decoder.decode(packet)
        except av.FFmpegError:
            continue  # one corrupt packet: the next decodes on its own
        out: list[Frame] = []
        if expected is not None and pts - expected > _GAP_TICKS:
            out += encoder.silence(pts - expected)
        for frame in decoded:
            out += encoder.encode(frame, pts)
            expected = pts + frame.samples * TIMEBASE // OPUS_RATE
        if out:
            conn.send(out)


class OpusTranscoder:
    """The parent's side: bounded hand-over to the child, AAC back to a callback."""

    def __init__(self, max_backlog: int, bitrate: int = 128_000) -> None:
        self.max_backlog = max_backlog
        self.dropped = 0
        self._worker = WorkerProcess(opus_to_aac, bitrate, name="whip-opus-aac")
        self._task: asyncio.Task[None] | None = None

    async def start(self, on_config: _ConfigSink, on_frame: _FrameSink) -> None:
        await self._worker.start()
        self._task = asyncio.get_running_loop().create_task(self._pump(on_config, on_frame))

    @property
    def started(self) -> bool:
        return self._task is not None

    def submit(self, pts: int, payload: bytes) -> None:
        """Queue one Opus packet; dropped (counted) when the child is this far behind."""
        if self._worker.backlog > self.max_backlog:
            self.dropped += 1
            return
        try:
            self._worker.send((pts, payload))
        except WorkerGone:
            self.dropped += 1

    async def _pump(self, on_config: _ConfigSink, on_frame: _FrameSink) -> None:
        try:
            while True:
                message = await self._worker.recv()
                if isinstance(message, CodecConfig):
                    on_config(message)
                elif isinstance(message, list):
                    for frame in message:
                        on_frame(frame)
        except WorkerGone:
            return

    async def stop(self) -> None:
        await self._worker.stop(grace=1.0)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
