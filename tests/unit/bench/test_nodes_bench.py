"""The nodes bench's capacity model: the first worker to saturate fills the machine."""

from __future__ import annotations

import pytest

from bench.nodes import carried


def test_one_worker_carries_what_its_core_has_left_after_its_idle_cost() -> None:
    # 5 % idle + 60 streams x 0.25 % = 20 %: (95 - 5) / 0.25 = 360 streams
    assert carried(60, [5.0], [20.0], [60]) == pytest.approx(360)


def test_two_workers_are_full_when_the_busier_share_is() -> None:
    even = carried(60, [5.0, 5.0], [12.5, 12.5], [30, 30])
    assert even == pytest.approx(720)  # twice one worker's 360
    # the kernel gave worker 1 two thirds of the streams: it fills up first
    uneven = carried(60, [5.0, 5.0], [15.0, 10.0], [40, 20])
    assert uneven == pytest.approx(540)
    assert carried(60, [5.0, 5.0], [20.0, 5.0], [60, 0]) == pytest.approx(360)
