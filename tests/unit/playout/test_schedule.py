"""Schedules with a fake clock: start, end, daily and weekly repeats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.playout.schedule import Schedule, Window, current_window, next_window, problem


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


def test_unscheduled_channel_is_always_in_its_window() -> None:
    schedule = Schedule()
    assert not schedule.bounded
    assert current_window(schedule, at(7, 3)) == Window(None, None)


def test_one_off_window_starts_and_ends() -> None:
    schedule = Schedule(at(7, 10), at(7, 12))
    assert current_window(schedule, at(7, 9, 59)) is None
    assert next_window(schedule, at(7, 9, 59)) == Window(at(7, 10), at(7, 12))
    assert current_window(schedule, at(7, 10)) == Window(at(7, 10), at(7, 12))
    assert current_window(schedule, at(7, 11, 59)) is not None
    assert current_window(schedule, at(7, 12)) is None
    assert next_window(schedule, at(7, 12)) is None


def test_open_ended_sides() -> None:
    assert current_window(Schedule(start=at(7, 10)), at(30, 0)) == Window(at(7, 10), None)
    assert current_window(Schedule(start=at(7, 10)), at(7, 9)) is None
    assert current_window(Schedule(end=at(7, 10)), at(1, 0)) == Window(None, at(7, 10))
    assert next_window(Schedule(end=at(7, 10)), at(7, 10)) is None


def test_daily_repeat_moves_the_window_by_whole_days() -> None:
    schedule = Schedule(at(7, 22), at(8, 1), "daily")  # crosses midnight
    assert current_window(schedule, at(7, 21)) is None
    assert current_window(schedule, at(8, 0, 30)) == Window(at(7, 22), at(8, 1))
    assert current_window(schedule, at(8, 12)) is None
    assert next_window(schedule, at(8, 12)) == Window(at(8, 22), at(9, 1))
    assert current_window(schedule, at(20, 23)) == Window(at(20, 22), at(21, 1))
    assert current_window(schedule, at(21, 1)) is None


def test_weekly_repeat() -> None:
    schedule = Schedule(at(7, 10), at(7, 11), "weekly")
    assert current_window(schedule, at(14, 10, 30)) == Window(at(14, 10), at(14, 11))
    assert current_window(schedule, at(8, 10, 30)) is None
    assert next_window(schedule, at(8, 10, 30)) == Window(at(14, 10), at(14, 11))


def test_window_edges_against_a_stepping_clock() -> None:
    """A minute-by-minute clock over three days sees exactly three daily windows."""
    schedule = Schedule(at(7, 10), at(7, 10, 30), "daily")
    now, inside, entries = at(7, 0), False, []
    while now < at(10, 0):
        window = current_window(schedule, now)
        if window is not None and not inside:
            entries.append(window.start)
        inside = window is not None
        now += timedelta(minutes=1)
    assert entries == [at(7, 10), at(8, 10), at(9, 10)]


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (Schedule(at(7, 10), at(7, 9)), "after scheduledStart"),
        (Schedule(at(7, 10), None, "daily"), "needs scheduledStart and scheduledEnd"),
        (Schedule(at(7, 10), at(8, 10), "daily"), "shorter than its period"),
        (Schedule(at(7, 10), at(14, 11), "weekly"), "shorter than its period"),
    ],
)
def test_unusable_schedules_say_why(schedule: Schedule, message: str) -> None:
    found = problem(schedule)
    assert found is not None and message in found


def test_usable_schedules() -> None:
    assert problem(Schedule()) is None
    assert problem(Schedule(at(7, 10), at(8, 9), "daily")) is None
