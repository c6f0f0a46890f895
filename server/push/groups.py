"""The running push fanouts (``server.push.fanout``): one task each, found by stream.

A pusher whose publisher takes shared bytes (RTMP) joins the fanout of its bus stream
with its chunk size and message stream id, if that fanout is still joinable, or
starts one; then it only waits for the fanout to be done with it. The fanout's task
wakes with the publisher once a batch is due (as a pusher's feed did), and at least
once an interval, so a connection that died while no media flowed is still noticed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from server.bus import Stream
from server.settings import PushSettings
from server.tasks import BackgroundTasks
from server.timers import run_batches

from .fanout import Member, PushFanout
from .ports import SharedSink

log = logging.getLogger("relaycast.push")

_Key = tuple[int, int, int]
"""(id of the bus stream, chunk size, message stream id)."""


class Membership:
    """One destination's place in a fanout, as its pusher holds it."""

    __slots__ = ("_done", "_upstream_at_join", "fanout", "member")

    def __init__(self, fanout: PushFanout, member: Member, done: asyncio.Future[None]) -> None:
        self.fanout = fanout
        self.member = member
        self._done = done
        self._upstream_at_join = fanout.upstream_dropped

    async def wait(self) -> None:
        """Until the fanout lets this destination go: returns at the end of the stream
        (or to switch streams), raises why the destination failed."""
        await self._done

    def leave(self) -> None:
        """Idempotent; the fanout stops once it has no destination left."""
        self.fanout.remove(self.member)
        done = self._done
        if not done.done():
            done.cancel()
        elif not done.cancelled():
            done.exception()  # seen: a failure nobody awaited is not logged as lost

    @property
    def dropped_frames(self) -> int:
        """Frames this destination lost: to its own bound, and to the fanout's reader."""
        upstream = self.fanout.upstream_dropped - self._upstream_at_join
        return self.member.dropped + upstream


def _settle(done: asyncio.Future[None]) -> Callable[[Exception | None], None]:
    def ended(error: Exception | None) -> None:
        if done.done():
            return
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)

    return ended


class PushGroups:
    """The fanouts of one media plane's pushes (owned by the push manager)."""

    def __init__(self, settings: PushSettings) -> None:
        self.settings = settings
        self._joinable: dict[_Key, PushFanout] = {}
        self._tasks = BackgroundTasks(log, "push fanout failed")

    def join(
        self,
        media: Stream,
        sink: SharedSink,
        name: str,
        switch: Callable[[], bool] | None = None,
    ) -> Membership:
        """Put ``sink`` into a fanout of ``media``: a joinable one, else a new one
        (whose bus reader is named ``name``)."""
        key = (id(media), sink.chunk_size, sink.stream_id)
        fanout = self._joinable.get(key)
        if fanout is None or not fanout.joinable:
            fanout = self._start(key, media, name)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        member = Member(sink, _settle(done), switch)
        fanout.add(member)
        return Membership(fanout, member, done)

    def _start(self, key: _Key, media: Stream, name: str) -> PushFanout:
        settings = self.settings
        reader = media.reader(
            name, "push", max_frames=settings.queue_max_frames, max_bytes=settings.queue_max_bytes
        )
        fanout = PushFanout(
            reader,
            key[1],
            key[2],
            stall=settings.stall_timeout,
            max_items=settings.queue_max_frames,
            max_bytes=settings.queue_max_bytes,
        )
        self._joinable[key] = fanout
        self._tasks.spawn(self._run(key, fanout), name=f"push fanout {name}")
        return fanout

    async def _run(self, key: _Key, fanout: PushFanout) -> None:
        reader = fanout.reader
        try:
            await run_batches(
                reader,
                self.settings.batch_interval,
                fanout.tick,
                empty=lambda: fanout.empty,
                ending=lambda: fanout.ending,  # the reader is done: only backlogs are left
            )
        except Exception as exc:  # our bug: its destinations fail (and reconnect), alone
            log.exception("push fanout %s failed", reader.name)
            fanout.fail(exc)
        finally:
            if not fanout.empty:  # cancelled (shutdown): nobody is left waiting
                fanout.fail(ConnectionAbortedError("push fanout stopped"))
            fanout.close()
            if self._joinable.get(key) is fanout:
                del self._joinable[key]

    async def close(self) -> None:
        await self._tasks.close()
