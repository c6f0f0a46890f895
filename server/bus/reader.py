"""A consumer's bounded view of a stream.

The publisher appends to the ring and at most resolves one future; everything else
(overflow, resync) happens only when the ring is full, so a fast reader costs the
publisher an append and a slow one costs it nothing more. Overflow drops to the next
video keyframe because frames after a gap are undecodable until then anyway; audio-only
streams just lose their oldest frames.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from server.media.frame import Frame, TrackKind

from .items import BusItem, ConfigChange, EndOfStream, Marker, StreamItem

_VIDEO = TrackKind.VIDEO
_CLOSED = EndOfStream("reader closed")


@dataclass(frozen=True, slots=True)
class ReaderStats:
    """A point-in-time snapshot of one reader (for the API and metrics)."""

    name: str
    kind: str
    delivered_frames: int
    dropped_frames: int
    queued_frames: int
    queued_items: int
    queued_bytes: int
    resyncs: int
    waiting_for_keyframe: bool
    closed: bool


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _collapse_key(item: BusItem) -> object:
    """Markers that survive an overflow: the latest of each kind (config per track)."""
    if isinstance(item, ConfigChange):
        return (ConfigChange, item.config.track)
    return type(item)


class Reader:
    """Bounded ring of items for one consumer; create with ``Stream.reader()``.

    One consumer task per reader: ``await next()`` (or ``async for``) returns frames and
    markers in publish order and finally an ``EndOfStream``. ``offer_frame`` and
    ``offer_marker`` are the publisher side, called by ``Stream`` on the event loop thread;
    ``has_video`` tells the overflow policy whether to resync at keyframes.
    """

    __slots__ = (
        "_count_skips",
        "_delivered",
        "_detach",
        "_dropped",
        "_finished",
        "_has_video",
        "_max_bytes",
        "_max_items",
        "_queued_bytes",
        "_resyncs",
        "_ring",
        "_skipping",
        "_waiter",
        "_waiter_due",
        "kind",
        "name",
    )

    def __init__(
        self,
        name: str,
        kind: str,
        *,
        max_items: int,
        max_bytes: int,
        detach: Callable[[Reader], None],
        has_video: Callable[[], bool],
    ) -> None:
        self.name = name
        self.kind = kind
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._detach = detach
        self._has_video = has_video
        self._ring: deque[BusItem] = deque()
        self._queued_bytes = 0
        self._delivered = 0
        self._dropped = 0
        self._resyncs = 0
        self._skipping = False
        self._count_skips = False
        self._waiter: asyncio.Future[None] | None = None
        # offered(): frames offered before this loop time do not wake the waiter
        self._waiter_due: tuple[Callable[[], float], float] | None = None
        self._finished: EndOfStream | None = None

    # ------------------------------------------------------------------ publisher side

    def start(self, items: list[StreamItem], *, wait_for_keyframe: bool) -> None:
        """Load the late-joiner snapshot (configs, then the GOP) before any live item."""
        for item in items:
            self._ring.append(item)
            if isinstance(item, Frame):
                self._queued_bytes += len(item.payload)
        self._skipping = wait_for_keyframe
        self._count_skips = False

    def offer_frame(self, frame: Frame, size: int) -> None:
        """Queue a frame of ``size`` payload bytes; never blocks. Called per published frame."""
        if self._skipping:
            if frame.keyframe and frame.track is _VIDEO:
                self._skipping = False
            else:
                if self._count_skips:
                    self._dropped += 1
                return
        ring = self._ring
        if len(ring) < self._max_items and self._queued_bytes + size <= self._max_bytes:
            ring.append(frame)
            self._queued_bytes += size
        else:
            self._overflow(frame, size)
        waiter = self._waiter
        if waiter is not None:
            due = self._waiter_due
            if due is not None and due[0]() < due[1]:
                return
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def offer_marker(self, marker: Marker | EndOfStream) -> None:
        """Queue a marker; markers are never dropped, only collapsed on overflow."""
        if self._finished is not None:
            return
        if len(self._ring) >= self._max_items and not isinstance(marker, EndOfStream):
            self._make_room_for_marker()
        self._ring.append(marker)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # ------------------------------------------------------------------ overflow policy

    def _collapse(self) -> None:
        """Drop every queued frame (counted); keep the latest marker of each kind."""
        last: dict[object, int] = {}
        frames = 0
        for index, item in enumerate(self._ring):
            if isinstance(item, Frame):
                frames += 1
            else:
                last[_collapse_key(item)] = index
        kept = [self._ring[i] for i in sorted(last.values())]
        self._ring.clear()
        self._ring.extend(kept)
        self._queued_bytes = 0
        self._dropped += frames

    def _start_resync(self) -> None:
        self._collapse()
        self._resyncs += 1
        self._skipping = True
        self._count_skips = True

    def _overflow(self, frame: Frame, size: int) -> None:
        if self._has_video():
            self._start_resync()
            if frame.keyframe and frame.track is _VIDEO and size <= self._max_bytes:
                self._skipping = False
                self._ring.append(frame)
                self._queued_bytes = size
            else:
                self._dropped += 1
            return
        while self._ring and (
            len(self._ring) >= self._max_items or self._queued_bytes + size > self._max_bytes
        ):
            if not self._drop_oldest_frame():
                self._collapse()
                break
        if len(self._ring) < self._max_items and self._queued_bytes + size <= self._max_bytes:
            self._ring.append(frame)
            self._queued_bytes += size
        else:
            self._dropped += 1

    def _drop_oldest_frame(self) -> bool:
        """Audio-only overflow: remove the oldest frame, keeping markers in place."""
        ring = self._ring
        held: list[BusItem] = []
        while ring:
            item = ring.popleft()
            if isinstance(item, Frame):
                self._queued_bytes -= len(item.payload)
                self._dropped += 1
                ring.extendleft(reversed(held))
                return True
            held.append(item)
        ring.extend(held)
        return False

    def _make_room_for_marker(self) -> None:
        if self._has_video():
            self._start_resync()
        elif not self._drop_oldest_frame():
            self._collapse()

    # ------------------------------------------------------------------ consumer side

    def next_nowait(self) -> BusItem | None:
        """The next item if one is queued (or the end once reached), else None."""
        ring = self._ring
        if ring:
            item = ring.popleft()
            if isinstance(item, Frame):
                self._queued_bytes -= len(item.payload)
                self._delivered += 1
            elif isinstance(item, EndOfStream):
                self._finish(item)
            return item
        return self._finished

    async def next(self) -> BusItem:
        """Wait for the next frame or marker; returns ``EndOfStream`` (repeatedly) at the end."""
        item = self.next_nowait()
        while item is None:
            if self._waiter is not None:
                raise RuntimeError(f"reader {self.name!r} already has a waiting consumer")
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                if self._waiter is waiter:
                    self._waiter = None
            item = self.next_nowait()
        return item

    async def offered(self, due: float, longest: float) -> None:
        """Wait until the publisher offers a frame at or after loop time ``due`` (or any
        marker; queued items do not count), the reader ends, or ``longest`` seconds
        pass. A consumer that batches (``server.playback.fanout``) wakes with the
        publisher, in the same loop turn as the read that brought the frame, instead of
        on a timer of its own (a timer wake-up of an otherwise idle process cost more
        than the batch it sent), and only once its batch is due."""
        if self._finished is not None:
            return
        if self._waiter is not None:
            raise RuntimeError(f"reader {self.name!r} already has a waiting consumer")
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._waiter = waiter
        self._waiter_due = (loop.time, due)
        timer = loop.call_later(longest, _wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter_due = None
            if self._waiter is waiter:
                self._waiter = None

    def __aiter__(self) -> Reader:
        return self

    async def __anext__(self) -> StreamItem:
        item = await self.next()
        if isinstance(item, EndOfStream):
            raise StopAsyncIteration
        return item

    def _finish(self, end: EndOfStream) -> None:
        if self._finished is None:
            self._finished = end
            self._detach(self)

    def close(self) -> None:
        """Detach from the stream and release the queue; a waiting ``next()`` returns the end."""
        self._ring.clear()
        self._queued_bytes = 0
        self._finish(_CLOSED)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # ------------------------------------------------------------------ introspection

    @property
    def closed(self) -> bool:
        """True once the end was consumed or ``close()`` was called."""
        return self._finished is not None

    @property
    def end(self) -> EndOfStream | None:
        """The end marker once it was consumed (its reason says why), else None."""
        return self._finished

    def dropped_downstream(self, frames: int) -> None:
        """Count frames the consumer itself dropped for a slow client it fans out to
        (``server.playback.fanout``), so the bus's drop metrics still show them."""
        self._dropped += frames

    @property
    def dropped_frames(self) -> int:
        """Frames this reader lost to overflow (including those skipped while resyncing)."""
        return self._dropped

    def stats(self) -> ReaderStats:
        """Snapshot of counters and queue depth (O(queue), meant for API/metrics polls)."""
        return ReaderStats(
            name=self.name,
            kind=self.kind,
            delivered_frames=self._delivered,
            dropped_frames=self._dropped,
            queued_frames=sum(1 for item in self._ring if isinstance(item, Frame)),
            queued_items=len(self._ring),
            queued_bytes=self._queued_bytes,
            resyncs=self._resyncs,
            waiting_for_keyframe=self._skipping,
            closed=self._finished is not None,
        )
