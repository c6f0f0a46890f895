"""One transcoded stream on the event loop: source bus -> worker process -> rendition buses.

The feeder takes every source item from its bus reader as it comes and sends it to the
worker, with at most ``WINDOW`` items unanswered; past that it sends only keyframes and
drops the pictures between them (counted), so a slow worker loses pictures, never memory
or a segment boundary, and never makes the source wait. The receiver publishes what the
worker returns onto each rendition's own bus stream. Lag = the newest source picture
taken minus the newest one every rendition has output, in media time.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from server.bus import (
    ConfigChange,
    Discontinuity,
    EndOfStream,
    Reader,
    Registry,
    Stream,
    StreamEndedError,
)
from server.encode import WorkerGone, WorkerProcess
from server.media.frame import TIMEBASE, CodecConfig, Frame, TrackKind
from server.settings import TranscodeSettings

from . import worker
from .ladder import Rendition
from .messages import AUDIO, RESTART, Batch, Failed, Job, Ready
from .meter import RateMeter
from .ports import RenditionObserver

log = logging.getLogger("relaycast.transcode")

WINDOW = 48
"""Source items sent to the worker and not yet answered, at most (about 1 s of A/V)."""
READY_TIMEOUT = 20.0
"""Seconds a new worker may take to start and open its encoders."""
BEHIND_LAG = 1.5
"""Seconds of lag (or frames dropped within the last second) that count as behind."""


class Outcome(enum.Enum):
    ENDED = "ended"  # the source ended
    DIED = "died"  # the worker process died: restart it
    FAILED = "failed"  # an encoder failed or fell behind: passthrough


@dataclass(eq=False)
class Output:
    """One rendition's bus stream and its measurements."""

    rendition: Rendition
    stream: Stream
    meter: RateMeter = field(default_factory=RateMeter)


@dataclass(frozen=True, slots=True)
class RenditionStats:
    name: str
    width: int
    height: int
    bitrate: int
    fps: float
    lag_ms: int
    dropped_frames: int


def stream_key(stream_id: str, name: str) -> str:
    """Registry id of a rendition's bus stream."""
    return f"{stream_id}/{name}"


class Transcoder:
    """Runs one stream's worker, restarts it when it dies, gives up to passthrough."""

    def __init__(
        self,
        stream_id: str,
        reader: Reader,
        renditions: tuple[Rendition, ...],
        registry: Registry,
        settings: TranscodeSettings,
        observers: list[RenditionObserver],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream_id = stream_id
        self.renditions = renditions
        self.settings = settings
        self.failure: str | None = None
        self.restarts = 0
        self.dropped = 0  # source frames the worker never saw
        self._reader = reader
        self._registry = registry
        self._observers = observers
        self._clock = clock
        self._outputs: list[Output] = []
        self._worker: WorkerProcess | None = None
        self._in_flight = 0
        self._room = asyncio.Event()
        self._skipping = False
        self._taken: int | None = None  # pts of the newest source picture taken
        self._shown: int | None = None
        self._dropped_at = -1e9
        self._behind_since: float | None = None
        self._video: CodecConfig | None = None
        self._audio: CodecConfig | None = None

    # ------------------------------------------------------------ lifecycle

    async def run(self, video: CodecConfig, audio: CodecConfig | None) -> None:
        """Transcode until the source ends, or give up (``failure`` says why)."""
        self._video, self._audio = video, audio
        for observer in self._observers:
            observer.renditions_planned(self.stream_id, tuple(r.name for r in self.renditions))
        try:
            while True:
                outcome = await self._run_worker()
                if outcome is Outcome.ENDED:
                    return
                if outcome is Outcome.DIED and self.restarts < self.settings.max_restarts:
                    self.restarts += 1
                    log.warning(
                        "stream %s: transcode worker died; restarting (%d)",
                        self.stream_id,
                        self.restarts,
                    )
                    await asyncio.sleep(0.5)
                    continue
                if self.failure is None:
                    self.failure = "the transcode worker kept dying"
                log.warning("stream %s: %s; passthrough", self.stream_id, self.failure)
                for observer in self._observers:
                    for r in self.renditions:
                        observer.rendition_dropped(self.stream_id, r.name)
                return
        finally:
            self._close_outputs("transcoding stopped")

    async def _run_worker(self) -> Outcome:
        assert self._video is not None
        job = Job(
            self.renditions,
            self._video,
            self._audio,
            self.settings.encoder,
            self.settings.preset,
            self.settings.audio_bitrate,
        )
        process = WorkerProcess(worker.run, job, name=f"transcode-{self.stream_id}")
        self._worker = process
        try:
            await process.start()
            try:
                async with asyncio.timeout(READY_TIMEOUT):
                    first = await process.recv()
            except TimeoutError:
                self.failure = "the transcode worker did not start in time"
                return Outcome.FAILED
            if isinstance(first, Failed):
                self.failure = first.reason
                return Outcome.FAILED
            assert isinstance(first, Ready)
            self._open_outputs(first)
            return await self._pump(process)
        except WorkerGone:
            return Outcome.DIED
        finally:
            self._worker = None
            await process.stop()

    async def _pump(self, process: WorkerProcess) -> Outcome:
        """Feed and receive until one of them decides how this worker's run ends."""
        self._in_flight = 0
        self._room.set()
        self._shown = None
        self._behind_since = None
        feeder = asyncio.create_task(self._feed(process))
        receiver = asyncio.create_task(self._receive(process))
        done, pending = await asyncio.wait({feeder, receiver}, return_when="FIRST_COMPLETED")
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, WorkerGone):
                await task
        return next(iter(done)).result()

    def kill_worker(self) -> None:
        """SIGKILL the worker (tests, and the operator's way to see a restart)."""
        if self._worker is not None:
            self._worker.kill()

    # ------------------------------------------------------------ outputs

    def _open_outputs(self, ready: Ready) -> None:
        """Fresh bus streams for the renditions (after a restart too: their packagers
        start over where the source cuts next)."""
        self._close_outputs("transcode worker restarted")
        tracks = frozenset({TrackKind.VIDEO} | ({TrackKind.AUDIO} if ready.audio else set()))
        for rendition, config in zip(self.renditions, ready.video, strict=True):
            stream = self._registry.create(stream_key(self.stream_id, rendition.name))
            stream.announce_tracks(tracks)
            stream.set_config(config)
            if ready.audio is not None:
                stream.set_config(ready.audio)
            self._outputs.append(Output(rendition, stream))
            for observer in self._observers:
                observer.rendition_opened(self.stream_id, rendition.name, stream)

    def _close_outputs(self, reason: str) -> None:
        for output in self._outputs:
            self._registry.remove(stream_key(self.stream_id, output.rendition.name), reason=reason)
        self._outputs = []

    # ------------------------------------------------------------ feeding

    async def _feed(self, process: WorkerProcess) -> Outcome:
        while True:
            item = await self._reader.next()
            if isinstance(item, EndOfStream):
                return Outcome.ENDED
            if isinstance(item, Frame):
                self._offer(process, item)
            elif isinstance(item, ConfigChange) and item.config.track is TrackKind.VIDEO:
                self._video = item.config
                process.send(item.config)
            elif isinstance(item, Discontinuity):
                self._send(process, RESTART)
            if self._behind_for() > self.settings.max_lag_seconds:
                self.failure = (
                    f"transcoding fell behind real time for over "
                    f"{self.settings.max_lag_seconds:g} s"
                )
                return Outcome.FAILED

    def _offer(self, process: WorkerProcess, frame: Frame) -> None:
        """Send a source frame, or drop it when the worker is a window behind: the
        pictures between keyframes, never a keyframe. Every rung then still has a
        keyframe wherever the source has one, so its segmenter cuts where the source's
        did and keeps the same media sequence numbers; a rung that missed a source
        segment would number every later one a segment off, and players switching
        renditions by number would skip or repeat a segment's worth of media."""
        video = frame.track is TrackKind.VIDEO
        if video:
            self._taken = frame.pts if self._taken is None else max(self._taken, frame.pts)
        if video and self._skipping and frame.keyframe and self._in_flight < WINDOW // 2:
            self._skipping = False
        if self._in_flight >= WINDOW and video:
            self._skipping = True
        if self._skipping and video and not frame.keyframe:
            self.dropped += 1
            self._dropped_at = self._clock()
            return
        if self._in_flight >= 2 * WINDOW:  # audio too, if the worker stopped answering
            self.dropped += 1
            return
        self._send(process, frame)

    def _send(self, process: WorkerProcess, message: object) -> None:
        process.send(message)
        self._in_flight += 1

    # ------------------------------------------------------------ receiving

    async def _receive(self, process: WorkerProcess) -> Outcome:
        while True:
            message = await process.recv()
            if isinstance(message, Failed):
                self.failure = message.reason
                return Outcome.FAILED
            if isinstance(message, Batch):
                self._in_flight = max(0, self._in_flight - 1)
                self._publish(message)

    def _publish(self, batch: Batch) -> None:
        outputs = self._outputs
        try:
            if batch.restarted:
                for output in outputs:
                    output.stream.mark_discontinuity()
            for index, frame in batch.frames:
                if index == AUDIO:
                    for output in outputs:
                        output.stream.publish(frame)
                else:
                    output = outputs[index]
                    output.meter.add(frame.pts, len(frame.payload))
                    output.stream.publish(frame)
        except StreamEndedError:
            return  # the stream is being torn down
        if batch.shown is not None:
            self._shown = batch.shown
        self._update_behind()

    # ------------------------------------------------------------ health

    @property
    def lag_ms(self) -> int:
        if self._taken is None or self._shown is None:
            return 0
        return max(0, (self._taken - self._shown) * 1000 // TIMEBASE)

    def _update_behind(self) -> None:
        now = self._clock()
        behind = self.lag_ms > BEHIND_LAG * 1000 or now - self._dropped_at < 1.0
        if not behind:
            self._behind_since = None
        elif self._behind_since is None:
            self._behind_since = now

    def _behind_for(self) -> float:
        self._update_behind()
        since = self._behind_since
        return 0.0 if since is None else self._clock() - since

    def stats(self) -> list[RenditionStats]:
        """Per rendition: measured bitrate and frame rate, lag and dropped frames."""
        dropped = self.dropped + self._reader.dropped_frames
        return [
            RenditionStats(
                name=o.rendition.name,
                width=o.rendition.width,
                height=o.rendition.height,
                bitrate=o.meter.bitrate,
                fps=o.meter.fps,
                lag_ms=self.lag_ms,
                dropped_frames=dropped,
            )
            for o in self._outputs
        ]
