"""One playing channel: its worker, its look-ahead buffer, its place on the bus.

``ChannelRun.run`` is the channel's life: claim the stream like an encoder would
(protocol ``playout``), start a worker, feed it the queue item after item, publish
what it encodes in real time, save the position every few seconds. An encoder that
publishes with the channel's key takes the stream over (the run yields, keeping its
position); when that encoder leaves, the run claims the same session back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from server.encode.process import WorkerGone, WorkerProcess
from server.ingest.manager import TAKEN_OVER, Claim, IngestManager
from server.ingest.refusals import RefusalReason, Refused
from server.media.frame import TIMEBASE, Frame, TrackKind
from server.playout import picker, worker
from server.playout.messages import Batch, Configs, Drained, Ended, Finish, Play, Started
from server.playout.pacing import Pacer
from server.playout.ports import Channel, ChannelDirectory, PlayoutState, QueueEntry
from server.playout.timeline import AAC_FRAME_TICKS
from server.settings import PlayoutSettings
from server.tasks import BackgroundTasks

log = logging.getLogger("relaycast.playout")

BufferItem = Frame | Configs | Started | Drained


@dataclass(frozen=True, slots=True)
class OnAir:
    """What a channel shows now (``nowPlaying`` in the API)."""

    item_id: str
    media_id: str
    position: float
    started_at: datetime
    loops: int


@dataclass(slots=True)
class ChannelStats:
    items_started: int = 0
    items_failed: int = 0
    skips: int = 0
    takeovers: int = 0
    frames: int = 0
    bytes: int = 0
    underruns: int = 0
    buffered_seconds: float = 0.0


@dataclass(slots=True)
class _Planned:
    entry: QueueEntry
    loops: int


@dataclass(slots=True)
class _Current:
    entry: QueueEntry
    loops: int
    video_pts: int
    start: float
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class PlayoutPublisher:
    """The run as ingest sees it: one more publisher, one that yields to encoders."""

    protocol = "playout"
    remote = "queue"
    yields_to_encoder = True

    def __init__(self, closed: Callable[[str], None]) -> None:
        self._closed = closed
        self._done = False

    def close(self, reason: str) -> None:
        if not self._done:
            self._done = True
            self._closed(reason)


class ChannelRun:
    def __init__(
        self,
        channel: Channel,
        directory: ChannelDirectory,
        ingest: IngestManager,
        settings: PlayoutSettings,
        by_schedule: bool = False,
    ) -> None:
        self.channel = channel
        self.stream_id = channel.stream_id
        self.directory = directory
        self.ingest = ingest
        self.settings = settings
        self.by_schedule = by_schedule
        self.stopped_by_service = False
        self.elsewhere = False
        """Another node plays the channel (it holds the stream): this run ends quietly."""
        self.state = channel.state
        self.stats = ChannelStats()
        self.finished = asyncio.Event()
        self.end_reason = ""
        self._frame_ticks = TIMEBASE / channel.profile.fps
        self._gen = 0
        self._buffer: deque[BufferItem] = deque()
        self._planned: deque[_Planned] = deque()
        self._decoding: _Planned | None = None
        self._current: _Current | None = None
        self._claim: Claim | None = None
        self._worker: WorkerProcess | None = None
        self._pacer = Pacer()
        self._received_pts: int | None = None
        self._published_video: int | None = None
        self._published_audio: int | None = None
        self._failures = 0
        self._space = asyncio.Event()
        self._more = asyncio.Event()
        self._interrupt = asyncio.Event()
        self._resume = asyncio.Event()
        self._yielded = False
        self._stopping = False
        self._resumed = False
        self._tasks = BackgroundTasks(log, "playout bookkeeping failed")

    # ------------------------------------------------------------ queries

    def on_air(self) -> OnAir | None:
        cur = self._current
        if cur is None or self._yielded:
            return None
        return OnAir(
            cur.entry.item_id, cur.entry.media_id, self._position(), cur.started_at, cur.loops
        )

    def _position(self) -> float:
        cur = self._current
        if cur is None:
            return 0.0
        shown = self._published_video if self._published_video is not None else cur.video_pts
        return cur.start + max(0, shown - cur.video_pts) / TIMEBASE

    # ------------------------------------------------------------ control

    def stop(self) -> None:
        self._stopping = True
        self._interrupt.set()
        self._resume.set()

    def publisher_left(self) -> None:
        """Ingest: the encoder that took over is gone."""
        self._resume.set()

    def _closed(self, reason: str) -> None:
        """Ingest closed our publisher. A takeover: wait for the encoder to leave.
        Anything else while we still play (a forced key rotation): claim the stream
        again at once, in the same session. A stop or shutdown stops the run first."""
        if self._stopping:
            return
        self._yielded = True
        self._interrupt.set()
        if reason == TAKEN_OVER:
            log.info("channel %s: playout paused (%s)", self.stream_id, reason)
            self.stats.takeovers += 1
        else:
            log.info("channel %s: playout disconnected (%s); resuming", self.stream_id, reason)
            self._resume.set()

    def skip(self) -> bool:
        if self._current is None or self._yielded or self._stopping or self._worker is None:
            return False
        self.stats.skips += 1
        cur = self._current.entry
        self._cut(cur.item_id, cur.position, keep=0)
        return True

    def removed(self, item_id: str, position: int) -> None:
        """A queue item was deleted: on air → the next at once; decoded ahead → cut
        where it would have started."""
        if self._worker is None or self._yielded:
            return
        if self._current is not None and self._current.entry.item_id == item_id:
            self._cut(item_id, position, keep=0)
            return
        for index, item in enumerate(self._buffer):
            if isinstance(item, Started) and item.item_id == item_id:
                self._cut(item_id, position, keep=index)
                return

    def _cut(self, item_id: str, position: int, keep: int) -> None:
        """Drop what was decoded ahead (all but the first ``keep`` buffered items) and
        play the item after ``item_id`` on a fresh timeline that continues the output."""
        self._gen += 1
        kept = list(self._buffer)[:keep]
        self._buffer = deque(kept)
        self._planned.clear()
        self._decoding = None
        video = [f.pts for f in kept if isinstance(f, Frame) and f.track is TrackKind.VIDEO]
        audio = [f.pts for f in kept if isinstance(f, Frame) and f.track is TrackKind.AUDIO]
        self._received_pts = video[-1] if video else None
        at = self._next_pts(video[-1] if video else None, audio[-1] if audio else None)
        self._space.set()
        self._tasks.spawn(self._play_next(self._gen, item_id, position, at))

    async def _play_next(self, gen: int, item_id: str, position: int, at: tuple[int, int]) -> None:
        loops = self._current.loops if self._current else self.state.loops
        entries = await self.directory.queue(self.stream_id)
        if gen != self._gen or self._worker is None:
            return
        nxt, wrapped = picker.following(entries, item_id, position, self.channel.loop)
        if nxt is None:
            self.end_reason = "queue finished"
            self._buffer.append(Drained(gen))
            self._more.set()
            return
        with contextlib.suppress(WorkerGone):
            self._play(_Planned(nxt, loops + wrapped), 0.0, fresh=True, at=at)

    # ------------------------------------------------------------ life

    async def run(self, ending: Callable[[ChannelRun], Awaitable[None]] | None = None) -> None:
        """``ending`` runs once the last position is saved and before the stream is let
        go: another node may take the channel the moment it is, so "off" goes first."""
        try:
            while not self._stopping:
                more = await self._stretch()
                if not more or self._stopping:
                    break
                await self._resume.wait()  # the encoder is on; wait for it to leave
                self._resume.clear()
                self._yielded = False
        except Exception:
            log.exception("channel %s: playout failed", self.stream_id)
            self.end_reason = "playout failed"
        finally:
            if ending is not None:
                with contextlib.suppress(Exception):
                    await ending(self)
            await self._teardown()

    async def _stretch(self) -> bool:
        """Publish until the queue ends (False) or an encoder takes over (True)."""
        self._interrupt.clear()
        grant = await self.directory.grant(self.stream_id)
        if grant is None:
            self.end_reason = "stream deleted"
            return False
        self.ingest.fallbacks[self.stream_id] = self
        try:
            self._claim = await self.ingest.claim_grant(grant, PlayoutPublisher(self._closed))
        except Refused as refused:
            if refused.reason is not RefusalReason.IN_USE:
                self.end_reason = str(refused)
                return False
            if not self.ingest.is_publishing(self.stream_id):  # held by another node
                self.elsewhere = True
                self.end_reason = "playing on another node"
                return False
            log.info("channel %s: an encoder is publishing; playout waits", self.stream_id)
            self._yielded = True
            return True
        if self._resumed:
            self._claim.live.stream.mark_discontinuity()
        self._resumed = True
        self._claim.tracks(frozenset({TrackKind.VIDEO, TrackKind.AUDIO}))
        while True:
            entries = await self.directory.queue(self.stream_id)
            if not entries:
                self.end_reason = "queue is empty"
                return False
            entry, start = picker.resume_point(entries, self.state)
            await self._start_worker()
            self._pacer.reset()
            video_at, audio_at = self._next_pts()
            self._play(
                _Planned(entry, self.state.loops), start, fresh=True, at=(video_at, audio_at)
            )
            try:
                return await self._pump()
            except (WorkerGone, TimeoutError) as exc:
                if self._stopping or not await self._worker_lost(exc):
                    return False

    async def _worker_lost(self, exc: Exception) -> bool:
        """The worker died (FFmpeg crashed on a file) or hung: the item it was decoding
        fails like a broken one, and a new worker goes on with the next item in the same
        session. False when there is nothing left to play."""
        planned = self._decoding or (
            _Planned(self._current.entry, self._current.loops) if self._current else None
        )
        what = "stopped answering" if isinstance(exc, TimeoutError) else "died"
        log.warning("channel %s: playout worker %s; starting a new one", self.stream_id, what)
        if planned is None:
            return True
        self._failed(planned.entry, f"the playout worker {what} on this item")
        if self._failures >= self.settings.max_failures_in_row:
            self.end_reason = f"{self._failures} items in a row failed"
            return False
        entries = await self.directory.queue(self.stream_id)
        entry = planned.entry
        nxt, wrapped = picker.following(entries, entry.item_id, entry.position, self.channel.loop)
        if nxt is None:
            self.end_reason = "queue finished"
            return False
        self.state = PlayoutState(nxt.item_id, 0.0, planned.loops + wrapped)
        return True

    async def _start_worker(self) -> None:
        profile = self.channel.profile
        process = WorkerProcess(
            worker.main,
            profile,
            self.settings.encoder,
            self.settings.preset,
            name=f"playout-{self.stream_id}",
        )
        await asyncio.wait_for(process.start(), self.settings.worker_timeout)
        self._worker = process

    async def _pump(self) -> bool:
        receive = asyncio.create_task(self._receive())
        publish = asyncio.create_task(self._publish())
        saver = asyncio.create_task(self._save_every())
        interrupt = asyncio.create_task(self._interrupt.wait())
        try:
            done, _ = await asyncio.wait(
                {receive, publish, interrupt}, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                if task is not interrupt and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            for task in (receive, publish, saver, interrupt):
                task.cancel()
            await asyncio.gather(receive, publish, saver, interrupt, return_exceptions=True)
            await self._stop_worker()
            self._buffer.clear()
            self._planned.clear()
            self._received_pts = None
        await self._save()
        return self._yielded and not self._stopping

    async def _stop_worker(self) -> None:
        if self._worker is not None:
            self._worker.kill()
            await self._worker.stop(grace=1.0)
            self._worker = None

    async def _teardown(self) -> None:
        self._stopping = True  # our own disconnect below is not a takeover
        if self.ingest.fallbacks.get(self.stream_id) is self:
            del self.ingest.fallbacks[self.stream_id]
        await self._stop_worker()
        await self._tasks.close()
        claim, self._claim = self._claim, None
        if claim is not None and claim.current:
            await self.ingest.disconnect(
                self.stream_id, end_session=True, reason=self.end_reason or "playout stopped"
            )
        self.finished.set()

    # ------------------------------------------------------------ worker side

    def _play(
        self, planned: _Planned, start: float, fresh: bool, at: tuple[int, int] = (0, 0)
    ) -> None:
        assert self._worker is not None
        self._decoding = planned
        self._planned.append(planned)
        self._worker.send(
            Play(self._gen, planned.entry.item_id, str(planned.entry.path), start, fresh, *at)
        )

    def _span(self) -> float:
        if self._received_pts is None:
            return 0.0
        shown = self._published_video
        if shown is None:
            first = next((f.pts for f in self._buffer if isinstance(f, Frame)), self._received_pts)
            shown = first
        return (self._received_pts - shown) / TIMEBASE

    async def _receive(self) -> None:
        assert self._worker is not None
        while True:
            while self._span() >= self.settings.lookahead_seconds:
                self._space.clear()
                await self._space.wait()
            async with asyncio.timeout(self.settings.worker_timeout):  # no task per message
                message = await self._worker.recv()
            if getattr(message, "gen", None) != self._gen:
                continue
            if isinstance(message, Batch):
                self._buffer.extend(message.frames)
                video = [f.pts for f in message.frames if f.track is TrackKind.VIDEO]
                if video:
                    self._received_pts = max(video[-1], self._received_pts or video[-1])
            elif isinstance(message, (Configs, Started, Drained)):
                self._buffer.append(message)
            elif isinstance(message, Ended):
                await self._ended(message)
            self.stats.buffered_seconds = self._span()
            self._more.set()

    async def _ended(self, ended: Ended) -> None:
        gen, planned = self._gen, self._decoding
        if planned is None or planned.entry.item_id != ended.item_id:
            return
        if ended.error is not None:
            self._failed(planned.entry, ended.error)
        else:
            self._failures = 0
        if self._failures >= self.settings.max_failures_in_row:
            self.end_reason = f"{self._failures} items in a row failed"
            self._finish()
            return
        entries = await self.directory.queue(self.stream_id)
        if gen != self._gen:
            return  # a skip or removal while the queue was read: that cut decides
        entry = planned.entry
        nxt, wrapped = picker.following(entries, entry.item_id, entry.position, self.channel.loop)
        if nxt is None:
            self.end_reason = "queue finished"
            self._finish()
            return
        self._play(_Planned(nxt, planned.loops + wrapped), 0.0, fresh=False)

    def _finish(self) -> None:
        assert self._worker is not None
        self._decoding = None
        self._worker.send(Finish(self._gen))

    def _failed(self, entry: QueueEntry, reason: str) -> None:
        self._failures += 1
        self.stats.items_failed += 1
        log.warning(
            "channel %s: item %s (media %s) skipped: %r",
            self.stream_id,
            entry.item_id,
            entry.media_id,
            reason,
        )
        self._tasks.spawn(self.directory.item_failed(self.stream_id, entry, reason))

    def _next_pts(self, video: int | None = None, audio: int | None = None) -> tuple[int, int]:
        """Where output continues: one frame after the last video frame (published,
        or kept in the buffer), and after the last audio frame, never before the video."""
        video = video if video is not None else self._published_video
        audio = audio if audio is not None else self._published_audio
        at = 0 if video is None else round(video + self._frame_ticks)
        audio_at = at if audio is None else audio + AAC_FRAME_TICKS
        return at, max(at, audio_at)

    # ------------------------------------------------------------ bus side

    async def _publish(self) -> None:
        """One wake-up publishes every frame that is due (``Pacer``: up to ``LEAD``
        early), then sleeps until the next one's time: a few wake-ups a second for the
        channel, not one per frame, and the receiver is woken once per burst."""
        while True:
            if not self._buffer:
                self._more.clear()
                await self._more.wait()
                continue
            delay = self._publish_due(time.monotonic())
            if delay is None:
                return
            if self._span() < self.settings.lookahead_seconds:
                self._space.set()
            if delay > 0:
                await asyncio.sleep(delay)

    def _publish_due(self, now: float) -> float | None:
        """Publish the head of the buffer while it is due; the wait for the first frame
        that is not (0: the buffer ran empty), None at ``Drained``."""
        while self._buffer:  # re-read: a cut replaces the buffer
            head = self._buffer[0]
            if isinstance(head, Frame):
                delay = self._pacer.wait(head.pts, now)
                if delay > 0:
                    return delay
                self._buffer.popleft()
                self._put(head, now)
            elif isinstance(head, Drained):
                return None
            else:
                self._buffer.popleft()
                self._marker(head)
        return 0.0

    def _put(self, frame: Frame, now: float) -> None:
        claim = self._claim
        if claim is None:
            return
        claim.frame(frame)
        claim.received(len(frame.payload), now)
        self.stats.frames += 1
        self.stats.bytes += len(frame.payload)
        self.stats.underruns = self._pacer.underruns
        if frame.track is TrackKind.VIDEO:
            self._published_video = frame.pts
        else:
            self._published_audio = frame.pts

    def _marker(self, item: BufferItem) -> None:
        claim = self._claim
        if isinstance(item, Configs) and claim is not None:
            claim.config(item.video)
            claim.config(item.audio)
        elif isinstance(item, Started):
            while self._planned and self._planned[0].entry.item_id != item.item_id:
                self._planned.popleft()
            if not self._planned:
                return
            planned = self._planned.popleft()
            self._current = _Current(planned.entry, planned.loops, item.video_pts, item.start)
            self.state = PlayoutState(planned.entry.item_id, item.start, planned.loops)
            self.stats.items_started += 1
            log.info(
                "channel %s: on air item %s (media %s) at %.1fs%s",
                self.stream_id,
                planned.entry.item_id,
                planned.entry.media_id,
                item.start,
                ", remuxed" if item.remuxed else "",
            )
            self._tasks.spawn(self.directory.item_started(self.stream_id, planned.entry))

    # ------------------------------------------------------------ saving

    async def _save_every(self) -> None:
        while True:
            await asyncio.sleep(self.settings.save_interval)
            await self._save()

    async def _save(self) -> None:
        cur = self._current
        if cur is None:
            return
        self.state = PlayoutState(cur.entry.item_id, self._position(), cur.loops)
        with contextlib.suppress(Exception):
            await self.directory.save_state(self.stream_id, self.state)
