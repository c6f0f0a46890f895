"""The scheduler with a fake clock: ``PlayoutService.tick`` starts a channel at each
window it has not played, stops what it started at the window's end, and a channel
stopped by hand stays stopped until its next window. Runs are recorded, not played."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from server.bus import StreamGrant
from server.playout.ports import Channel, PlayoutState, Profile, QueueEntry
from server.playout.schedule import Schedule
from server.playout.service import PlayoutService
from server.settings import PlayoutSettings


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


class Directory:
    """One channel in memory, remembering what the service saves."""

    def __init__(self, schedule: Schedule) -> None:
        self.row = Channel(
            stream_id="ls_1",
            environment_id="env_1",
            enabled=True,
            loop=True,
            profile=Profile(320, 180, 25, 400_000, 128_000),
            schedule=schedule,
            on=False,
            window_start=None,
            state=PlayoutState(),
        )

    async def channel(self, stream_id: str) -> Channel | None:
        return self.row

    async def channels(self) -> list[Channel]:
        return [self.row]

    async def grant(self, stream_id: str) -> StreamGrant | None:
        return None

    async def queue(self, stream_id: str) -> list[QueueEntry]:
        return [QueueEntry("qi_1", "med_1", Path("/nonexistent"), 0)]

    async def set_on(self, stream_id: str, on: bool, window_start: datetime | None) -> None:
        window = window_start if on else self.row.window_start
        self.row = replace(self.row, on=on, window_start=window)

    async def save_state(self, stream_id: str, state: PlayoutState) -> None:
        pass

    async def item_started(self, stream_id: str, entry: QueueEntry) -> None:
        pass

    async def item_failed(self, stream_id: str, entry: QueueEntry, reason: str) -> None:
        pass


class Recorded:
    def __init__(self, by_schedule: bool) -> None:
        self.by_schedule = by_schedule


class Service(PlayoutService):
    """Launching and stopping are recorded with the fake time."""

    def __init__(self, directory: Directory, clock: list[datetime]) -> None:
        super().__init__(directory, None, PlayoutSettings(), now=lambda: clock[0])  # type: ignore[arg-type]
        self.clock = clock
        self.events: list[tuple[str, datetime]] = []

    def _launch(self, channel: Channel, by_schedule: bool) -> None:
        self._runs[channel.stream_id] = Recorded(by_schedule)  # type: ignore[assignment]
        self.events.append(("start", self.clock[0]))

    async def _stop_run(self, stream_id: str) -> None:
        if self._runs.pop(stream_id, None) is not None:
            self.events.append(("stop", self.clock[0]))


async def _run(service: Service, start: datetime, end: datetime, **hooks: Any) -> None:
    """Tick once a minute from ``start`` to ``end``; ``hooks`` maps a time to a coroutine
    function run just before that minute's tick."""
    now = start
    while now <= end:
        service.clock[0] = now
        hook = hooks.get(now.isoformat())
        if hook is not None:
            await hook()
        await service.tick()
        now += timedelta(minutes=1)


async def test_one_off_window_starts_once_and_stops_at_its_end() -> None:
    directory = Directory(Schedule(at(7, 10), at(7, 10, 30)))
    service = Service(directory, [at(7, 9)])
    await _run(service, at(7, 9), at(8, 12))
    assert service.events == [("start", at(7, 10)), ("stop", at(7, 10, 30))]
    assert directory.row.on is False


async def test_daily_repeat_plays_every_day_and_a_manual_stop_holds_for_that_window() -> None:
    directory = Directory(Schedule(at(7, 10), at(7, 10, 30), "daily"))
    service = Service(directory, [at(7, 9)])
    await _run(service, at(7, 9), at(8, 11))
    assert service.events == [
        ("start", at(7, 10)),
        ("stop", at(7, 10, 30)),
        ("start", at(8, 10)),
        ("stop", at(8, 10, 30)),
    ]
    service.events.clear()
    stop_by_hand = {at(9, 10, 5).isoformat(): lambda: service.stop("ls_1")}
    await _run(service, at(9, 9), at(10, 11), **stop_by_hand)
    assert service.events == [
        ("start", at(9, 10)),
        ("stop", at(9, 10, 5)),  # by hand: not started again in the same window
        ("start", at(10, 10)),
        ("stop", at(10, 10, 30)),
    ]


async def test_a_channel_started_by_hand_is_not_stopped_by_the_schedule() -> None:
    directory = Directory(Schedule(at(7, 10), at(7, 10, 30), "daily"))
    service = Service(directory, [at(7, 11)])
    assert await service.start("ls_1") is None
    await _run(service, at(7, 11), at(7, 13))
    assert service.events == [("start", at(7, 11))]


class Claims:
    """The streams another node holds (``PublisherClaims.elsewhere``)."""

    def __init__(self) -> None:
        self.held: set[str] = set()

    async def elsewhere(self, stream_ids: Collection[str]) -> set[str]:
        return self.held & set(stream_ids)


async def test_a_channel_on_that_no_node_plays_is_taken_over_at_the_next_tick() -> None:
    """Several nodes: the channel plays on another node (its claim) until that node
    dies; then this node's next tick plays it."""
    directory = Directory(Schedule())
    directory.row = replace(directory.row, on=True, state=PlayoutState("qi_1", 12.5, 1))
    service = Service(directory, [at(7, 9)])
    claims = Claims()
    service.ingest = SimpleNamespace(claims=claims)  # type: ignore[assignment]
    claims.held.add("ls_1")
    await _run(service, at(7, 9), at(7, 9, 3))
    assert service.events == []  # held elsewhere: plays there
    claims.held.clear()  # that node died: its claim lapsed
    await _run(service, at(7, 9, 4), at(7, 9, 6))
    assert service.events == [("start", at(7, 9, 4))]  # once: it plays here now
