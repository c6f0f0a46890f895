"""One destination of one live stream: connect, push, heal, unpublish.

Each pusher is its own task with its own bounded queue, so a destination that is
slow, stuck or dead costs only itself: it drops its frames to the next keyframe
(counted) while the publisher and the other destinations go on. Every connection
starts at the latest keyframe with the codec configuration, and a destination
waiting to retry holds no queue.

An RTMP connection (a :class:`~server.push.ports.SharedSink`) joins its stream's
fanout (``server.push.fanout``), which reads the bus and chunks each message once
for all the destinations that can share the bytes; other publishers (SRT) get a
bus reader of their own per connection and a :class:`_Feed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from server.bus import ConfigChange, Discontinuity, EndOfStream, Reader, Stream
from server.logfields import MediaLog
from server.media.flv import build_on_metadata
from server.media.frame import CodecConfig, Frame, TrackKind
from server.settings import PushSettings
from server.transcode.ladder import SOURCE

from .backoff import Backoff
from .connect import Connect
from .groups import Membership, PushGroups
from .ports import DestinationSpec, MediaPublisher, PushStalled, Refused, SharedSink
from .status import DestinationStatus, PushStatus
from .timeline import Timeline

log = logging.getLogger("relaycast.push")

LIVENESS_CHECK = 1.0
"""Seconds between checks, while waiting to retry, that the session has not ended."""
RENDITION_WAIT = 10.0
"""Seconds a destination that pushes a rendition waits for it at the start of a session
(its worker starts a moment after the source) before it pushes the source instead."""
RENDITION_POLL = 0.25
"""Seconds between looks for the rendition while waiting for it."""


def describe(exc: BaseException, spec: DestinationSpec) -> str:
    """One line for ``lastError``: refusals named as such, secrets scrubbed."""
    if isinstance(exc, Refused):
        text = f"refused by the destination: {exc.reason}"
    elif isinstance(exc, TimeoutError):
        text = "timed out"
    else:
        text = str(exc) or type(exc).__name__
    return spec.scrub(text)[:500]


class Pusher:
    """Pushes ``stream`` to one destination until the session ends or it is stopped."""

    def __init__(
        self,
        spec: DestinationSpec,
        stream: Stream,
        connect: Connect,
        settings: PushSettings,
        *,
        clock: Callable[[], float] = time.time,
        on_error: Callable[[str], None] | None = None,
        renditions: Callable[[str], Stream | None] = lambda name: None,
        groups: PushGroups | None = None,
    ) -> None:
        self.spec = spec
        self.stream = stream
        self.renditions = renditions
        self.settings = settings
        self.clock = clock
        self.on_error = on_error
        self.status = PushStatus(
            Backoff(settings.retry_initial, settings.retry_max, settings.retry_reset_after)
        )
        self._connect = connect
        self._publisher: MediaPublisher | None = None
        self._reader: Reader | None = None
        self._membership: Membership | None = None
        # the manager's fanouts, so that destinations of one stream share them
        self._groups = groups if groups is not None else PushGroups(settings)
        self._task: asyncio.Task[None] | None = None
        self._wanted = spec
        self._changing = asyncio.Lock()
        # a push line names its stream, and the destination stands in for a connection
        self.log = MediaLog(log, spec.destination_id)
        self.log.bind(stream.stream_id)

    # ------------------------------------------------------------ control

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name=f"push {self.spec.destination_id}")

    @property
    def done(self) -> bool:
        return self._task is None or self._task.done()

    async def stop(self) -> None:
        """Unpublish (bounded by ``close_timeout``) and end the task; idempotent."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def change(self, spec: DestinationSpec) -> None:
        """New URL or key: reconnect this destination only, at once. Changes that
        race each other are serialised; the latest one wins."""
        self._wanted = spec
        async with self._changing:
            if self._wanted is self.spec and not self.done:
                return
            await self.stop()
            self.spec = self._wanted
            self.status.changed()
            if not self.stream.ended:
                self.start()

    def snapshot(self) -> DestinationStatus:
        publisher, reader, membership = self._publisher, self._reader, self._membership
        if membership is not None:
            dropped = membership.dropped_frames
        else:
            dropped = reader.dropped_frames if reader is not None else 0
        return self.status.snapshot(publisher.bytes_sent if publisher is not None else 0, dropped)

    # ------------------------------------------------------------ the task

    async def _run(self) -> None:
        spec = self.spec
        try:
            while not self.stream.ended:
                self.status.connecting()
                try:
                    media = await self._media()
                    if self.stream.ended:
                        return  # the session ended while the rendition was awaited
                    await self._connection(media)
                    if self.stream.ended:
                        return
                    continue  # the rendition ended (worker restarted) or came: follow it
                except Exception as exc:  # every failure of a destination is its own
                    self._failed(exc)
                await self._wait_retry()
        finally:
            self.status.finished()
            self.log.info("push %s to %s: stopped", spec.destination_id, spec.redacted)

    def _failed(self, exc: Exception) -> None:
        error = describe(exc, self.spec)
        delay, new_outage = self.status.failed(self.clock(), error)
        if not isinstance(exc, Refused | OSError | TimeoutError):
            self.log.debug("push %s failure detail", self.spec.destination_id, exc_info=exc)
        self.log.warning(
            "push %s to %s failed: %s; retrying in %.1f s",
            self.spec.destination_id,
            self.spec.redacted,
            error,
            delay,
        )
        if new_outage and self.on_error is not None:
            try:
                self.on_error(error)
            except Exception:  # a listener must never break the push
                self.log.exception("push listener failed")

    async def _wait_retry(self) -> None:
        """Sleep until the retry time, waking early when the session ends."""
        retry_at = self.status.next_retry_at or self.clock()
        while not self.stream.ended:
            left = retry_at - self.clock()
            if left <= 0:
                return
            await asyncio.sleep(min(left, LIVENESS_CHECK))

    def _rendition(self) -> Stream | None:
        """The chosen rendition's live bus stream, if it has one now."""
        stream = self.renditions(self.spec.rendition)
        return stream if stream is not None and not stream.ended else None

    async def _media(self) -> Stream:
        """The bus stream to push: the source, or the chosen rendition once it exists
        (it starts a moment after the session; the source meanwhile if it is late)."""
        name = self.spec.rendition
        if name == SOURCE:
            return self.stream
        deadline = self.clock() + RENDITION_WAIT
        while not self.stream.ended:
            stream = self._rendition()
            if stream is not None:
                return stream
            if self.clock() >= deadline:
                break
            await asyncio.sleep(RENDITION_POLL)
        if self.stream.ended:
            return self.stream  # the session is over (the caller stops)
        self.log.warning(
            "push %s: rendition %s is not available; pushing the source until it is",
            self.spec.destination_id,
            name,
        )
        return self.stream

    async def _connection(self, media: Stream) -> None:
        publisher = await self._connect(self.spec.url)
        self._publisher = publisher
        try:
            self.status.active(self.clock())
            self.log.info("push %s to %s: active", self.spec.destination_id, self.spec.redacted)
            await self._pump(publisher, media)
        finally:
            self._publisher = None
            self.status.connection_done(publisher.bytes_sent, 0)
            await publisher.close(self.settings.close_timeout)

    def _switch(self, media: Stream) -> Callable[[], bool] | None:
        """While the source stands in for an awaited rendition: True once it exists."""
        if media is self.stream and self.spec.rendition != SOURCE:
            return lambda: self._rendition() is not None
        return None

    async def _pump(self, publisher: MediaPublisher, media: Stream) -> None:
        if isinstance(publisher, SharedSink):
            await self._shared(publisher, media)
            return
        reader = media.reader(
            f"push:{self.spec.destination_id}",
            "push",
            max_frames=self.settings.queue_max_frames,
            max_bytes=self.settings.queue_max_bytes,
        )
        self._reader = reader
        try:
            feed = _Feed(
                publisher, reader, self.settings.stall_timeout, self.settings.batch_interval
            )
            feed.switch = self._switch(media)
            await feed.run()
        finally:
            self._reader = None
            self.status.connection_done(0, reader.dropped_frames)
            reader.close()

    async def _shared(self, publisher: SharedSink, media: Stream) -> None:
        name = f"push:{self.spec.destination_id}"
        membership = self._groups.join(media, publisher, name, self._switch(media))
        self._membership = membership
        try:
            await membership.wait()
        finally:
            membership.leave()
            self._membership = None
            self.status.connection_done(0, membership.dropped_frames)


class _Feed:
    """Bus items → one publisher, until the stream ends (then we unpublish).

    The feed sends everything queued at most every ``interval`` seconds, so a
    destination costs a few writes per second instead of one per frame. It wakes with
    the publisher (the first publish once a send is due), in the loop turn of the
    ingest read, rather than on a timer of its own, which cost a wake-up of the
    process per send; without publishes it still wakes within an interval past due,
    to notice a connection that died while no media flowed (encoder away)."""

    __slots__ = (
        "configs",
        "interval",
        "publisher",
        "reader",
        "stall",
        "started",
        "switch",
        "timeline",
        "writer",
    )

    def __init__(
        self, publisher: MediaPublisher, reader: Reader, stall: float, interval: float
    ) -> None:
        self.publisher = publisher
        self.reader = reader
        self.stall = stall
        self.interval = interval
        self.timeline = Timeline()
        self.configs: dict[TrackKind, CodecConfig] = {}
        self.started = False
        self.writer = publisher.batch_writer()
        # True when this connection should end for another stream (the awaited rendition)
        self.switch: Callable[[], bool] | None = None

    async def run(self) -> None:
        publisher, reader, interval = self.publisher, self.reader, self.interval
        loop = asyncio.get_running_loop()
        due = loop.time() + interval
        while True:
            await reader.offered(due, max(due - loop.time(), 0.0) + interval)
            if loop.time() < due and not reader.closed:  # closed: go and see the end
                continue
            due = loop.time() + interval
            if publisher.error is not None:
                raise publisher.error
            if not publisher.writable:
                await self._drain()
            ended = self._take()
            self.writer.flush()
            if ended or (self.switch is not None and self.switch()):
                return

    def _take(self) -> bool:
        """Send what is queued until the transport is full; True at the stream's end."""
        reader, writer, timeline = self.reader, self.writer, self.timeline
        while (item := reader.next_nowait()) is not None:
            if type(item) is Frame:
                if item.track is TrackKind.DATA:
                    continue
                if not self.started:
                    self._start()
                writer.frame(timeline.shift(item))
            elif isinstance(item, ConfigChange):
                self.configs[item.config.track] = item.config
                if self.started:
                    writer.config(item.config, timeline.last_ms)
            elif isinstance(item, Discontinuity):
                timeline.discontinuity()
            elif isinstance(item, EndOfStream):
                return True
            if writer.full:
                writer.flush()
                if not self.publisher.writable:
                    return False
        return False

    def _start(self) -> None:
        """Metadata and sequence headers go first: decoders need them before frames."""
        video, audio = self.configs.get(TrackKind.VIDEO), self.configs.get(TrackKind.AUDIO)
        self.publisher.send_metadata(build_on_metadata(video, audio))
        for config in (video, audio):
            if config is not None:
                self.writer.config(config, 0)
        self.started = True

    async def _drain(self) -> None:
        try:
            async with asyncio.timeout(self.stall):
                await self.publisher.drain()
        except TimeoutError:
            raise PushStalled(f"destination stopped reading for {self.stall:g} s") from None
