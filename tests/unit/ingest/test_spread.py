"""The workers' spread rule and their shared load slots (``server.ingest.spread``)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from control_api.workers import spread_from_environ
from server.ingest.spread import LoadBoard, board_path, create_board, pick


def test_a_worker_keeps_a_connection_unless_it_holds_more_than_the_least() -> None:
    assert pick([0, 0], 0) is None
    assert pick([3, 3], 1) is None
    assert pick([2, 3], 0) is None
    assert pick([4, 3], 0) == 1
    assert pick([5, 2, 1], 1) == 2


@given(st.lists(st.integers(0, 3), min_size=1, max_size=400), st.integers(2, 4))
def test_whatever_the_kernel_picks_the_spread_stays_within_one(
    landed: list[int], workers: int
) -> None:
    """Connections landing anywhere (a worker index per connection, mod ``workers``:
    all on one worker included) end up evenly spread, each going where ``pick`` says."""
    loads = [0] * workers
    for first in landed:
        here = first % workers
        target = pick(loads, here)
        loads[here if target is None else target] += 1
    assert max(loads) - min(loads) <= 1


def test_the_board_is_shared_through_its_file(tmp_path: Path) -> None:
    create_board(tmp_path, 3)
    one, two = LoadBoard(board_path(tmp_path), 3), LoadBoard(board_path(tmp_path), 3)
    try:
        one.set(0, 7)
        two.add(2, 1)
        two.add(2, 1)
        assert one.loads() == two.loads() == [7, 0, 2]
    finally:
        one.close()
        two.close()


def test_a_worker_knows_its_place_from_its_environment(tmp_path: Path) -> None:
    assert spread_from_environ({}) is None
    spread = spread_from_environ({"RELAYCAST_SPREAD": f"1/2/{tmp_path}"})
    assert spread is not None
    assert (spread.index, spread.workers, spread.directory) == (1, 2, tmp_path)
