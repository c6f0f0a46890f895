"""Blocking playlist reload decisions (fake clock) and the asyncio change signal."""

from __future__ import annotations

import asyncio

import pytest

from server.hls import ChangeSignal
from server.hls.blocking import (
    BadDirective,
    BlockingReload,
    Directives,
    Edge,
    Outcome,
    advance_part_limit,
    parse_directives,
)
from tests.unit.media.avsource import media

from .helpers import T0, start


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def reload(
    msn: int | None, part: int | None = None, clock: FakeClock | None = None
) -> BlockingReload:
    started = clock.now if clock else 1000.0
    return BlockingReload(Directives(msn, part), started, target_duration=2.0, part_target=0.5)


EDGE = Edge(last_msn=10, last_segment_parts=4, last_part=1)  # open segment 11 has parts 0, 1


def test_parse_directives() -> None:
    assert parse_directives({}) == Directives()
    assert parse_directives({"_HLS_msn": "12", "_HLS_part": "3"}) == Directives(12, 3)
    assert parse_directives({"_HLS_msn": "1", "_HLS_skip": "YES"}).skip
    assert parse_directives({"_HLS_skip": "v2"}) == Directives(skip=True)
    for bad in (
        {"_HLS_part": "1"},
        {"_HLS_msn": "-1"},
        {"_HLS_msn": "x"},
        {"_HLS_msn": "1", "_HLS_part": "1.5"},
        {"_HLS_skip": "NO"},
        {"_HLS_msn": "9" * 13},
    ):
        with pytest.raises(BadDirective):
            parse_directives(bad)


@pytest.mark.parametrize("digits", ["\u00b2", "\u0661", "1\u0661", "\uff11"])
def test_only_ascii_digits_are_numbers(digits: str) -> None:
    """str.isdigit() is true for "²" (int() raises -> 500) and U+0661 (int() reads 1)."""
    for query in ({"_HLS_msn": digits}, {"_HLS_msn": "1", "_HLS_part": digits}):
        with pytest.raises(BadDirective):
            parse_directives(query)


@pytest.mark.parametrize(
    ("msn", "part", "outcome"),
    [
        (None, None, Outcome.READY),  # no directives: plain reload
        (9, None, Outcome.READY),
        (10, None, Outcome.READY),
        (11, None, Outcome.WAIT),  # segment 11 is still open
        (12, None, Outcome.WAIT),  # last + 2 is the furthest allowed
        (13, None, Outcome.BAD_REQUEST),
        (10, 3, Outcome.READY),
        (10, 4, Outcome.READY),  # beyond the last part of 10 = part 0 of 11, which exists
        (11, 1, Outcome.READY),
        (11, 2, Outcome.WAIT),  # the part being written (preload hint)
        (11, 7, Outcome.WAIT),  # 6 parts ahead: the advance part limit (3 / 0.5 s)
        (11, 8, Outcome.BAD_REQUEST),
        (12, 0, Outcome.WAIT),
        (12, 6, Outcome.BAD_REQUEST),
    ],
)
def test_decisions_at_an_edge(msn: int | None, part: int | None, outcome: Outcome) -> None:
    assert reload(msn, part).decide(EDGE, 1000.0).outcome is outcome


def test_part_index_past_a_segment_end_rolls_over() -> None:
    edge = Edge(last_msn=10, last_segment_parts=4, last_part=-1)  # 11 just opened
    assert reload(10, 4).decide(edge, 1000.0).outcome is Outcome.WAIT
    assert reload(11, 0).decide(edge, 1000.0).outcome is Outcome.WAIT
    later = Edge(last_msn=10, last_segment_parts=4, last_part=0)
    assert reload(10, 4).decide(later, 1000.0).outcome is Outcome.READY


def test_wait_then_503_after_three_target_durations() -> None:
    clock = FakeClock()
    request = reload(11, 2, clock)
    first = request.decide(EDGE, clock.now)
    assert first.outcome is Outcome.WAIT and first.wait == pytest.approx(6.0)
    assert request.decide(EDGE, clock.advance(5.9)).wait == pytest.approx(0.1)
    assert request.decide(EDGE, clock.advance(0.1)).outcome is Outcome.UNAVAILABLE


def test_ended_stream_ignores_directives_and_parts_need_parts() -> None:
    ended = Edge(last_msn=3, last_segment_parts=1, last_part=-1, ended=True)
    assert reload(99, 5).decide(ended, 1000.0).outcome is Outcome.READY
    no_parts = BlockingReload(Directives(1, 0), 0.0, 2.0, None)
    assert no_parts.decide(Edge(last_msn=0), 0.0).outcome is Outcome.BAD_REQUEST
    assert advance_part_limit(0.5) == 6 and advance_part_limit(0.2) == 15
    assert advance_part_limit(1.0) == 3


def test_blocking_against_a_live_segmenter() -> None:
    m = media()
    seg = start(m)
    frames = iter(m.frames)
    clock = FakeClock()
    seg.on_frame(next(frames), T0)  # first keyframe: part 0.0 is being written
    hint = seg.preload_hint
    assert hint == (0, 0)
    request = seg.blocking_reload(Directives(*hint), clock.now)
    steps = 0
    while request.decide(seg.edge(), clock.now).outcome is Outcome.WAIT:
        frame = next(frames)
        seg.on_frame(frame, T0)
        clock.advance(0.01)
        steps += 1
    assert request.decide(seg.edge(), clock.now).outcome is Outcome.READY
    assert 15 < steps < 40  # 15 video frames (and the audio between them)
    text = seg.media_playlist() or ""
    assert 'URI="part0.0.m4s"' in text and 'PRELOAD-HINT:TYPE=PART,URI="part0.1.m4s"' in text
    ahead = seg.blocking_reload(Directives(0, 9), clock.now)
    assert ahead.decide(seg.edge(), clock.now).outcome is Outcome.BAD_REQUEST


async def test_change_signal_wakes_waiters() -> None:
    signal = ChangeSignal()
    assert await signal.wait(0.0) is False
    assert await signal.wait(0.01) is False
    waiters = [asyncio.create_task(signal.wait(5.0)) for _ in range(3)]
    await asyncio.sleep(0)
    signal.notify()
    assert await asyncio.gather(*waiters) == [True, True, True]
