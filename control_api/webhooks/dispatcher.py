"""The webhook dispatcher: from announced events to signed, retried POSTs.

Three stages, each unable to hold up the one before it:

1. :meth:`Dispatcher.event` (called by the :class:`EventHub` on the media plane's
   paths) renders the resource and puts the event on a bounded in-memory queue: no
   I/O, no waiting. A full queue drops the event, counted and logged.
2. The writer turns queued events into delivery rows (the durable outbox).
3. The scheduler starts attempts for due rows. Every webhook has its own lane of
   ``concurrency_per_webhook`` attempts; rows of a webhook whose lane is full are not
   even fetched, so a slow or hung receiver waits alone (no head-of-line blocking).
   On a shared database the lane spans the nodes (``control_api.webhooks.lanes``).

Outcomes are written back to the rows; a row still ``pending`` when the process
stops is attempted again after a restart (at-least-once).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from control_api.credentials import new_id
from control_api.lifecycle import Service
from control_api.media_library.targets import GuardedResolver
from control_api.settings import WebhookSettings
from control_api.store.webhooks import DELIVERED, FAILED, PENDING, Due, QueuedEvent, WebhookRepo
from control_api.version import version
from control_api.webhooks import sender, signing
from control_api.webhooks.backoff import retry_delay
from control_api.webhooks.events import Event, EventType, Resource
from control_api.webhooks.hub import EventHub
from control_api.webhooks.lanes import SharedLanes
from control_api.webhooks.targets import WebhookTargets
from server.tasks import BackgroundTasks

log = logging.getLogger("relaycast.webhooks")

Renderer = Callable[[Resource], Mapping[str, Any]]
BATCH = 100
IDLE_POLL = 60.0
ATTEMPT_LEASE_MARGIN = 30.0
"""Seconds past an attempt's own timeouts that another node waits before it tries a
delivery this node took (several nodes, one database)."""
PRUNE_EVERY = 3600.0
STOP_FLUSH = 1.0
LANE_BUSY_ELSEWHERE = 1.0
"""Seconds a webhook whose lane other nodes fill is left alone before it is tried again
(its rows stay due: without this the scheduler would fetch them at once, forever)."""
EXHAUSTED_MAX_PAUSE = 60.0
"""Longest pause of all attempts while the process is out of file descriptors: the
retry schedule's first steps, capped so sending resumes soon after they are back."""


class Dispatcher(Service):
    def __init__(
        self,
        repo: WebhookRepo,
        hub: EventHub,
        settings: WebhookSettings,
        render: Renderer,
        own_port: Callable[[], int],
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._repo = repo
        self._hub = hub
        self._settings = settings
        self._render = render
        self._targets = WebhookTargets(settings.allow_private_targets, own_port)
        self._rand = rand
        self.counters: Counter[str] = Counter()
        """Outcomes for metrics: ``delivered``, ``failed`` (will retry), ``gave_up``,
        ``dropped`` (never queued), ``exhausted`` (this process was out of file descriptors)."""
        self._queue: asyncio.Queue[Event] = asyncio.Queue(settings.queue_size)
        self._wake = asyncio.Event()
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._lanes: Counter[str] = Counter()
        self.shared_lanes: SharedLanes | None = None
        """On a shared database (set by the composition root): lanes across nodes."""
        self._busy_elsewhere: dict[str, float] = {}
        self._slots: dict[str, str] = {}
        self._leaving = BackgroundTasks(log, "letting go of a webhook lane slot failed")
        self._last_event_at = datetime.fromtimestamp(0, UTC)
        self._writer: asyncio.Task[None] | None = None
        self._scheduler: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._user_agent = f"relaycast/{version()}"  # read from disk: once, not per attempt
        self._paused_until = 0.0
        self._pauses = 0
        hub.listeners.append(self)

    # ------------------------------------------------------------ intake

    def event(self, type_: EventType, environment_id: str, resource: Resource) -> None:
        """The hub listener: snapshot the resource now, queue without waiting."""
        event = Event(
            id=new_id("evt"),
            type=type_,
            created_at=self._event_time(),
            environment_id=environment_id,
            data=self._render(resource),
        )
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.counters["dropped"] += 1
            log.warning("webhook queue full: dropped %s event %s", type_, event.id)

    def _event_time(self) -> datetime:
        """Strictly increasing, so deliveries of one receiver keep the events' order."""
        now = datetime.now(UTC)
        if now <= self._last_event_at:
            now = self._last_event_at + timedelta(microseconds=1)
        self._last_event_at = now
        return now

    @property
    def targets(self) -> WebhookTargets:
        """The address guard attempts use, for checking a URL when it is registered."""
        return self._targets

    def wake(self) -> None:
        """Something became due (a manual retry): look now instead of at the next poll."""
        self._wake.set()

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        s = self._settings
        timeout = aiohttp.ClientTimeout(total=s.timeout, connect=s.connect_timeout)
        connector = aiohttp.TCPConnector(
            limit=s.max_in_flight, resolver=GuardedResolver(self._targets)
        )
        self._http = aiohttp.ClientSession(timeout=timeout, connector=connector)
        self._writer = asyncio.create_task(self._write_forever(), name="webhook-writer")
        self._scheduler = asyncio.create_task(self._schedule_forever(), name="webhook-scheduler")

    async def stop(self) -> None:
        """Attempts in flight are abandoned (their rows stay pending for the next start);
        events not yet written (the media plane's last ones, from its own shutdown) get
        a short last chance to reach the outbox before the writer stops."""
        if self in self._hub.listeners:
            self._hub.listeners.remove(self)
        scheduler, self._scheduler = self._scheduler, None
        await _cancel([*([scheduler] if scheduler else []), *self._in_flight.values()])
        await self._leaving.close()  # the node leaving the installation drops its slots
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), STOP_FLUSH)
            await _cancel([writer])
        if self._http is not None:
            await self._http.close()
            self._http = None

    # ------------------------------------------------------------ writer

    async def _write_forever(self) -> None:
        """Items are marked done only once written, so ``stop`` can wait for them."""
        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, batch: list[Event]) -> None:
        queued = [
            QueuedEvent(e.id, e.type, e.environment_id, e.created_at, e.body()) for e in batch
        ]
        window = timedelta(hours=self._settings.retry_window_hours)
        try:
            if await self._repo.enqueue(queued, window):
                self._wake.set()
        except Exception:
            self.counters["dropped"] += len(batch)
            log.exception("could not queue %d webhook event(s)", len(batch))

    # ------------------------------------------------------------ scheduler

    async def _schedule_forever(self) -> None:
        next_prune = time.monotonic()
        while True:
            self._wake.clear()
            paused = self._paused_until - time.monotonic()
            if paused > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), paused)
                continue
            try:
                started = await self._start_due()
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + PRUNE_EVERY
                    await self._prune()
                delay = await self._delay(started)
            except Exception:
                log.exception("webhook scheduler could not read the outbox")
                delay = self._settings.retry_base_delay
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    def _full_lanes(self) -> list[str]:
        cap = self._settings.concurrency_per_webhook
        now = time.monotonic()
        for hook, until in list(self._busy_elsewhere.items()):
            if until <= now:
                del self._busy_elsewhere[hook]
        full = [hook for hook, n in self._lanes.items() if n >= cap]
        return full + [hook for hook in self._busy_elsewhere if hook not in self._lanes]

    async def _enter_lanes(self, fitting: list[Due]) -> list[Due]:
        """The rows whose webhook has a free slot across the nodes (each now held)."""
        if self.shared_lanes is None:
            return fitting
        entered = []
        for item in fitting:
            if item.webhook_id in self._busy_elsewhere:
                continue
            slot = await self.shared_lanes.enter(item.webhook_id)
            if slot is None:
                self._busy_elsewhere[item.webhook_id] = time.monotonic() + LANE_BUSY_ELSEWHERE
                continue
            self._slots[item.delivery_id] = slot
            entered.append(item)
        return entered

    def _leave_lane(self, delivery_id: str) -> None:
        slot = self._slots.pop(delivery_id, None)
        if slot is not None and self.shared_lanes is not None:
            self._leaving.spawn(self.shared_lanes.leave(slot))

    async def _start_due(self) -> int:
        room = self._settings.max_in_flight - len(self._in_flight)
        if room <= 0:
            return 0
        now = datetime.now(UTC)
        due = await self._repo.due(
            now, self._in_flight.keys(), self._full_lanes(), min(BATCH, room)
        )
        fitting = await self._enter_lanes(self._fitting(due))
        s = self._settings
        lease = s.connect_timeout + s.timeout + ATTEMPT_LEASE_MARGIN
        try:
            taken = await self._repo.take([i.delivery_id for i in fitting], now, lease)
        except Exception:
            for item in fitting:
                self._leave_lane(item.delivery_id)
            raise
        started = 0
        for item in fitting:
            if item.delivery_id not in taken:
                self._leave_lane(item.delivery_id)
                continue  # another node got there first
            self._lanes[item.webhook_id] += 1
            task = asyncio.create_task(self._attempt(item), name=f"webhook-{item.delivery_id}")
            self._in_flight[item.delivery_id] = task
            task.add_done_callback(functools.partial(self._finished, item))
            started += 1
        return started

    def _fitting(self, due: Sequence[Due]) -> list[Due]:
        """The due rows each webhook's lane has room for: the ones to take and start."""
        cap = self._settings.concurrency_per_webhook
        room = {hook: cap - n for hook, n in self._lanes.items()}
        fitting = []
        for item in due:
            left = room.get(item.webhook_id, cap)
            if left > 0:
                room[item.webhook_id] = left - 1
                fitting.append(item)
        return fitting

    def _finished(self, item: Due, _task: asyncio.Task[None]) -> None:
        self._in_flight.pop(item.delivery_id, None)
        self._leave_lane(item.delivery_id)
        self._lanes[item.webhook_id] -= 1
        if self._lanes[item.webhook_id] <= 0:
            del self._lanes[item.webhook_id]
        self._wake.set()

    async def _delay(self, started: int) -> float:
        """How long to sleep unless woken: not at all after a full batch (more may be
        due); until an attempt ends when all slots are taken; else until the next due."""
        if started == BATCH:
            return 0.0
        if len(self._in_flight) >= self._settings.max_in_flight:
            return IDLE_POLL
        idle = LANE_BUSY_ELSEWHERE if self._busy_elsewhere else IDLE_POLL
        when = await self._repo.next_due(self._in_flight.keys(), self._full_lanes())
        if when is None:
            return idle
        return min(idle, max(0.0, (when - datetime.now(UTC)).total_seconds()))

    async def _prune(self) -> None:
        hours = self._settings.delivery_retention_hours
        removed = await self._repo.prune(datetime.now(UTC) - timedelta(hours=hours))
        if removed:
            log.info("pruned %d finished webhook deliveries", removed)

    # ------------------------------------------------------------ one attempt

    async def _attempt(self, item: Due) -> None:
        """Never raises: an attempt that fails on this side is an outcome like any other
        (a task dying with the row still due would be started again at once, forever)."""
        assert self._http is not None
        try:
            body = item.payload.encode("utf-8")
            headers = {
                "Content-Type": "application/json",
                "User-Agent": self._user_agent,
                signing.HEADER: signing.signature(item.secret, int(time.time()), body),
                "Relaycast-Event-Id": item.event_id,
                "Relaycast-Delivery-Id": item.delivery_id,
            }
            outcome = await sender.post(self._http, item.url, body, headers, self._targets)
        except Exception as exc:
            outcome = sender.failed(exc)
        if outcome.exhausted:
            self.counters["exhausted"] += 1
            self._pause(outcome)  # the row stays due: not the receiver's failure
            return
        self._pauses = 0
        try:
            await self._repo.record(item.delivery_id, **self._result(item, outcome))
        except Exception:
            # the row stays pending and due, so it is attempted again (at least once);
            # holding the lane a while keeps a failing database from hammering the receiver
            log.exception("could not record webhook delivery %s", item.delivery_id)
            await asyncio.sleep(self._settings.retry_base_delay)

    def _pause(self, outcome: sender.Outcome) -> None:
        """Out of file descriptors: every attempt would fail the same way, so none is
        started for a while (growing while it lasts), with one log line per pause."""
        now = time.monotonic()
        if now < self._paused_until:
            return
        self._pauses += 1
        s = self._settings
        cap = min(s.retry_max_delay, EXHAUSTED_MAX_PAUSE)
        delay = retry_delay(self._pauses, min(s.retry_base_delay, cap), cap, self._rand())
        self._paused_until = now + delay
        log.warning(
            "webhook attempts paused %.1fs: this process is out of resources (%s)",
            delay,
            outcome.error,
        )

    def _result(self, item: Due, outcome: sender.Outcome) -> dict[str, Any]:
        now = datetime.now(UTC)
        attempts = item.attempts + 1
        fields: dict[str, Any] = {
            "attempts": attempts,
            "last_attempt_at": now,
            "response_status": outcome.status,
            "error": outcome.error,
        }
        if outcome.ok:
            self.counters["delivered"] += 1
            return {**fields, "status": DELIVERED, "delivered_at": now, "next_attempt_at": None}
        s = self._settings
        delay = retry_delay(attempts, s.retry_base_delay, s.retry_max_delay, self._rand())
        retry_at = now + timedelta(seconds=delay)
        if outcome.final or retry_at >= item.give_up_at:
            self.counters["gave_up"] += 1
            log.warning(
                "webhook delivery %s failed for good after %d attempt(s): %s",
                item.delivery_id,
                attempts,
                outcome.error,
            )
            return {**fields, "status": FAILED, "next_attempt_at": None}
        self.counters["failed"] += 1
        log.info(
            "webhook delivery %s attempt %d failed (%s); again in %.1fs",
            item.delivery_id,
            attempts,
            outcome.error,
            delay,
        )
        return {**fields, "status": PENDING, "next_attempt_at": retry_at}


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
