"""SampledLog: a peer-triggered line is logged at most N times a second, the rest
counted and summed up once per window."""

from __future__ import annotations

import asyncio
import logging

import pytest

from server.logsample import SampledLog


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "relaycast.test.sample"]


def test_at_most_n_a_second_then_one_summary(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "relaycast.test.sample")
    clock = Clock()
    sampled = SampledLog(logging.getLogger("relaycast.test.sample"), 5, "refusals", clock)
    logged = [sampled.log(logging.WARNING, "refused %d", i) for i in range(1000)]
    assert logged.count(True) == 5 and sampled.suppressed_total == 995
    assert _messages(caplog) == [f"refused {i}" for i in range(5)]
    clock.now += 1.0
    sampled.log(logging.WARNING, "refused late")
    assert _messages(caplog)[5:] == [
        "995 more refusals in the last 1 s not logged (all counted)",
        "refused late",
    ]


async def test_the_summary_comes_when_the_window_ends_without_another_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "relaycast.test.sample")
    sampled = SampledLog(logging.getLogger("relaycast.test.sample"), 2, "refusals")
    for _ in range(7):
        sampled.log(logging.WARNING, "refused")
    assert len(_messages(caplog)) == 2
    await asyncio.sleep(1.1)
    assert _messages(caplog)[2:] == ["5 more refusals in the last 1 s not logged (all counted)"]
