"""All channels of this process: start, stop, skip, the schedule, resume after a restart.

The service owns one ``ChannelRun`` per playing channel. The control API calls it
(start/stop/skip/queue edits); its scheduler task starts and stops channels at their
schedule's windows; at start-up it resumes the channels that were playing.

Several nodes: a channel plays where its stream is claimed (``PublisherClaims``), one
node at a time. Every tick, a channel that is on but that no live node holds (its
node died, its lease ran out) is taken over here from its saved item and position;
if two nodes try at once, the claim lets one in and the other's run ends quietly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from server.ingest.manager import IngestManager
from server.playout.channel import ChannelRun, ChannelStats, OnAir
from server.playout.ports import Channel, ChannelDirectory
from server.playout.schedule import current_window
from server.settings import PlayoutSettings

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

__all__ = ["ChannelStats", "OnAir", "PlayoutService"]

log = logging.getLogger("relaycast.playout")


class PlayoutService:
    def __init__(
        self,
        directory: ChannelDirectory,
        ingest: IngestManager,
        settings: PlayoutSettings,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.directory = directory
        self.ingest = ingest
        self.settings = settings
        self.now = now
        self._runs: dict[str, ChannelRun] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._scheduler: asyncio.Task[None] | None = None
        self._closing = False
        self._busy: set[str] = set()
        """Channels being started or stopped here: not to be taken over meanwhile."""

    # ------------------------------------------------------------ API side

    async def start(self, stream_id: str) -> str | None:
        """Play the channel now; a reason it cannot (for a 409), or None."""
        channel = await self.directory.channel(stream_id)
        if channel is None:
            return f"live stream {stream_id!r} is not a channel"
        if stream_id in self._runs:
            return None
        if not await self.directory.queue(stream_id):
            return f"channel {stream_id!r} has an empty queue; add media first"
        window = current_window(channel.schedule, self.now())
        key = (window.start or EPOCH) if window and channel.schedule.bounded else None
        await self.directory.set_on(stream_id, True, key)
        if stream_id not in self._runs:
            self._launch(channel, by_schedule=False)
        return None

    async def stop(self, stream_id: str) -> None:
        """Stop playing; the next start begins at the top of the queue. The run goes
        first: its last save of the position would otherwise land after the reset."""
        self._busy.add(stream_id)
        try:
            await self._stop_run(stream_id)
            await self.directory.set_on(stream_id, False, None)
        finally:
            self._busy.discard(stream_id)

    def on_air(self, stream_id: str) -> OnAir | None:
        run = self._runs.get(stream_id)
        return None if run is None else run.on_air()

    def skip(self, stream_id: str) -> bool:
        run = self._runs.get(stream_id)
        return run is not None and run.skip()

    def removed(self, stream_id: str, item_id: str, position: int) -> None:
        run = self._runs.get(stream_id)
        if run is not None:
            run.removed(item_id, position)

    def stats(self) -> dict[str, ChannelStats]:
        return {sid: run.stats for sid, run in self._runs.items()}

    # ------------------------------------------------------------ runs

    def _launch(self, channel: Channel, by_schedule: bool) -> None:
        run = ChannelRun(channel, self.directory, self.ingest, self.settings, by_schedule)
        self._runs[channel.stream_id] = run
        self._tasks[channel.stream_id] = asyncio.create_task(self._life(run))
        log.info(
            "channel %s: playout starting%s",
            channel.stream_id,
            " (schedule)" if by_schedule else "",
        )

    async def _life(self, run: ChannelRun) -> None:
        try:
            await run.run(self._ended)
        finally:
            if self._runs.get(run.stream_id) is run:
                del self._runs[run.stream_id]
                self._tasks.pop(run.stream_id, None)

    async def _ended(self, run: ChannelRun) -> None:
        """A run that ended by itself turns the channel off, before its stream is let go
        (no other node takes over a channel that finished)."""
        if self._closing or run.stopped_by_service:
            return
        if run.elsewhere:
            log.info("channel %s: plays on another node", run.stream_id)
            return
        log.info("channel %s: playout ended (%s)", run.stream_id, run.end_reason)
        await self.directory.set_on(run.stream_id, False, None)

    async def _stop_run(self, stream_id: str) -> None:
        run = self._runs.get(stream_id)
        task = self._tasks.get(stream_id)
        if run is None or task is None:
            return
        run.stopped_by_service = True
        run.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(task), self.settings.worker_timeout)

    # ------------------------------------------------------------ schedule and restart

    async def resume(self) -> int:
        """At start-up: play again the channels that were playing (from their saved
        item and position), then look after schedules. Returns how many resumed."""
        resumed = await self._take_over(await self.directory.channels())
        self._scheduler = asyncio.create_task(self._schedule_loop())
        return resumed

    def _free(self, stream_id: str) -> bool:
        return stream_id not in self._runs and stream_id not in self._busy

    async def _take_over(self, channels: list[Channel]) -> int:
        """Play the channels that are on and that no node plays (none here, none
        holding their stream elsewhere); returns how many were started."""
        idle = [c for c in channels if c.on and c.enabled and self._free(c.stream_id)]
        if not idle:
            return 0
        held = await self.ingest.claims.elsewhere([c.stream_id for c in idle])
        started = 0
        for channel in idle:
            sid = channel.stream_id
            if sid in held or not self._free(sid):  # started here while we asked
                continue
            self._launch(channel, by_schedule=channel.window_start is not None)
            started += 1
        return started

    async def _schedule_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.schedule_interval)
            try:
                await self.tick()
            except Exception:
                log.exception("channel scheduler failed")

    async def tick(self) -> None:
        """One look at every scheduled channel: start it at a window it has not played
        yet, stop what the schedule started once its window is over."""
        now = self.now()
        channels = await self.directory.channels()
        taken = await self._take_over(channels)
        if taken:
            log.warning("took over %d channel(s) no node was playing", taken)
        for channel in channels:
            if not channel.schedule.bounded:
                continue
            window = current_window(channel.schedule, now)
            run = self._runs.get(channel.stream_id)
            if window is None:
                if run is not None and run.by_schedule:
                    await self.stop(channel.stream_id)
                continue
            key = window.start or EPOCH  # an open start: one window, forever
            if run is None and channel.enabled and channel.window_start != key:
                if not await self.directory.queue(channel.stream_id):
                    continue
                await self.directory.set_on(channel.stream_id, True, key)
                self._launch(channel, by_schedule=True)

    async def close(self) -> None:
        """Process stop: end every run, keeping each channel's "on" and position, so
        the next start resumes them."""
        self._closing = True
        if self._scheduler is not None:
            self._scheduler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scheduler
        for stream_id in list(self._runs):
            await self._stop_run(stream_id)
