"""MS-A's arithmetic: the push share per destination and the medians over repeats."""

from __future__ import annotations

from bench.multistream import DESTINATIONS, _median_of, _median_pair, _push_share


def run(pushed: float, bare: float) -> tuple[dict[str, float], dict[str, float]]:
    return {"cpu_ms_per_s": pushed}, {"cpu_ms_per_s": bare}


def test_the_push_share_is_what_the_destinations_add_per_destination() -> None:
    assert _push_share(run(30.0, 20.0)) == 10.0 / DESTINATIONS


def test_the_median_run_is_chosen_by_its_push_share_and_kept_whole() -> None:
    runs = [run(40.0, 20.0), run(30.0, 25.0), run(50.0, 21.0)]
    assert _median_pair(runs) is runs[0]  # shares 2.0, 0.5, 2.9
    assert _median_pair(runs[:2]) is runs[1]  # even count: the lower of the middle two


def test_ratios_that_could_not_be_computed_are_left_out_of_the_median() -> None:
    assert _median_of([1.0, None, 3.0]) == 2.0
    assert _median_of([None]) is None
