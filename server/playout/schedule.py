"""When a channel plays: its schedule as windows of time, computed without a clock.

A schedule is ``start``/``end`` (either may be missing) and a repeat (``none``,
``daily``, ``weekly``). A repeating schedule is the first window moved by whole
periods, so it needs both ends and a window shorter than its period. ``now`` is
always passed in: the scheduler and the tests use the same function.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Repeat = Literal["none", "daily", "weekly"]

PERIODS: dict[str, timedelta] = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}


@dataclass(frozen=True, slots=True)
class Schedule:
    start: datetime | None = None
    end: datetime | None = None
    repeat: Repeat = "none"

    @property
    def bounded(self) -> bool:
        """False for a channel without any schedule: it plays when started."""
        return self.start is not None or self.end is not None


@dataclass(frozen=True, slots=True)
class Window:
    """``[start, end)``; ``None`` is open-ended on that side."""

    start: datetime | None
    end: datetime | None

    def contains(self, now: datetime) -> bool:
        return (self.start is None or self.start <= now) and (self.end is None or now < self.end)


def problem(schedule: Schedule) -> str | None:
    """Why a schedule cannot be used (for a validation error), or None."""
    if schedule.start and schedule.end and schedule.end <= schedule.start:
        return "scheduledEnd must be after scheduledStart"
    period = PERIODS.get(schedule.repeat)
    if period is None:
        return None
    if schedule.start is None or schedule.end is None:
        return f"scheduleRepeat {schedule.repeat!r} needs scheduledStart and scheduledEnd"
    if schedule.end - schedule.start >= period:
        return f"a {schedule.repeat} window must be shorter than its period"
    return None


def current_window(schedule: Schedule, now: datetime) -> Window | None:
    """The window ``now`` is in, or None outside every window."""
    found = next_window(schedule, now)
    return found if found is not None and found.contains(now) else None


def next_window(schedule: Schedule, now: datetime) -> Window | None:
    """The window ``now`` is in, else the next one to come; None when none comes."""
    period = PERIODS.get(schedule.repeat)
    if period is None or schedule.start is None or schedule.end is None:
        first = Window(schedule.start, schedule.end)
        return None if first.end is not None and now >= first.end else first
    length = schedule.end - schedule.start
    if now < schedule.start:
        return Window(schedule.start, schedule.end)
    # the latest repetition that started at or before now
    start = schedule.start + ((now - schedule.start) // period) * period
    if now < start + length:
        return Window(start, start + length)
    return Window(start + period, start + period + length)
