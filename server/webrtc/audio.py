"""Opus from a WHIP publisher, transcoded once to AAC for HLS, RTMP/SRT and recording.

Decoding and encoding run in a worker process (the design rule for CPU-heavy media
work): the event loop only hands Opus packets over and takes AAC frames back. The
child stamps AAC from a sample counter (``AudioEncoder``); a gap in the Opus
timeline (loss, DTX) is filled with encoded silence so audio stays on the video's
clock.

Packets cross to the child in batches of ``BATCH_TICKS`` (:class:`OpusBatcher`), not
one by one: with a 20 ms packet per message, pickling, the pipe and two process
wake-ups per packet cost more CPU than decoding and encoding it. FFmpeg's own Opus
decoder is used because it outputs planar float, the AAC encoder's input format, so
nothing is converted in between (libopus would give interleaved samples).
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
OpusBatch = list[tuple[int, bytes]]
"""``(pts_ticks, opus_packet)`` in arrival order."""

OPUS_RATE = 48_000
_GAP_TICKS = TIMEBASE // 10
"""A jump in the Opus timeline beyond this is filled with silence (100 ms: five frames)."""
BATCH_TICKS = TIMEBASE // 10
"""Opus timeline covered by one hand-over to the child (100 ms: five 20 ms packets).
AAC for HLS and RTMP leaves at most this much later; WHEP viewers get the Opus at once."""
_PACKET_TICKS = TIMEBASE // 50
"""A browser's or OBS's Opus packet (20 ms): the last one of a batch completes its span."""
MAX_BATCH_PACKETS = 50
"""A bound for timelines that do not advance (a peer repeating one timestamp)."""


class OpusBatcher:
    """Collects packets until they span ``BATCH_TICKS`` of the Opus timeline (or the
    timeline jumps back, or ``MAX_BATCH_PACKETS`` are pending). Pure: no I/O, no clock:
    the packets' own timestamps decide, so in DTX (a packet every 400 ms) a packet
    waits at most until the next one arrives."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: OpusBatch = []

    def add(self, pts: int, payload: bytes) -> OpusBatch | None:
        """Take one packet; the batch due for the child, if this packet completes one."""
        pending = self._pending
        pending.append((pts, payload))
        span = pts - pending[0][0]
        if 0 <= span < BATCH_TICKS - _PACKET_TICKS and len(pending) < MAX_BATCH_PACKETS:
            return None
        return self.take()

    def take(self) -> OpusBatch | None:
        """Whatever is pending (at the end of the stream), or None."""
        pending, self._pending = self._pending, []
        return pending or None


class OpusToAac:
    """The child's work: Opus batches in, AAC Frames out."""

    def __init__(self, bitrate: int) -> None:
        decoder = av.CodecContext.create("opus", "r")
        assert isinstance(decoder, av.AudioCodecContext)
        decoder.layout = "stereo"
        decoder.sample_rate = OPUS_RATE
        self._decoder = decoder
        self.encoder = AudioEncoder(AudioProfile(bitrate=bitrate))
        self._expected: int | None = None
        self._time_base = Fraction(1, OPUS_RATE)

    def batch(self, items: OpusBatch) -> list[Frame]:
        out: list[Frame] = []
        for pts, payload in items:
            out += self._packet(pts, payload)
        return out

    def _packet(self, pts: int, payload: bytes) -> list[Frame]:
        packet = av.Packet(payload)
        packet.pts = pts * OPUS_RATE // TIMEBASE
        packet.time_base = self._time_base
        try:
            decoded = self._decoder.decode(packet)
        except av.FFmpegError:
            return []  # one corrupt packet: the next decodes on its own
        out: list[Frame] = []
        if self._expected is not None and pts - self._expected > _GAP_TICKS:
            out += self.encoder.silence(pts - self._expected)
        for frame in decoded:
            out += self.encoder.encode(frame, pts)
            self._expected = pts + frame.samples * TIMEBASE // OPUS_RATE
        return out


def opus_to_aac(conn: Connection, bitrate: int) -> None:
    """Worker target: Opus batches in; the AAC config once, then a list of AAC Frames
    per batch that produced any. EOF on the pipe ends it."""
    work = OpusToAac(bitrate)
    conn.send(work.encoder.config)
    while True:
        out = work.batch(conn.recv())
        if out:
            conn.send(out)


class OpusTranscoder:
    """The parent's side: batched, bounded hand-over to the child, AAC back to a callback."""

    def __init__(self, max_backlog: int, bitrate: int = 128_000) -> None:
        self.max_backlog = max_backlog
        self.dropped = 0
        self._batcher = OpusBatcher()
        self._worker = WorkerProcess(opus_to_aac, bitrate, name="whip-opus-aac")
        self._task: asyncio.Task[None] | None = None

    async def start(self, on_config: _ConfigSink, on_frame: _FrameSink) -> None:
        await self._worker.start()
        self._task = asyncio.get_running_loop().create_task(self._pump(on_config, on_frame))

    @property
    def started(self) -> bool:
        return self._task is not None

    def submit(self, pts: int, payload: bytes) -> None:
        """Queue one Opus packet; the batch it completes goes to the child, or is
        dropped (its packets counted) when the child is this far behind."""
        batch = self._batcher.add(pts, payload)
        if batch is not None:
            self._send(batch)

    def _send(self, batch: OpusBatch) -> None:
        if self._worker.backlog > self.max_backlog:
            self.dropped += len(batch)
            return
        try:
            self._worker.send(batch)
        except WorkerGone:
            self.dropped += len(batch)

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
        if self._task is not None and (rest := self._batcher.take()) is not None:
            self._send(rest)
        await self._worker.stop(grace=1.0)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
