"""A webhook's lane spans the nodes on one PostgreSQL: at most
``concurrency_per_webhook`` attempts at once in the installation (issue 22)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from control_api.jobs import Jobs
from control_api.store import Store
from control_api.webhooks.lanes import SharedLanes
from tests.store.conftest import fresh_pg_database

LEASE = 15.0


@pytest.fixture
async def pg() -> AsyncIterator[Store]:
    async with fresh_pg_database() as url:
        s = await Store.open(url)
        yield s
        await s.close()


async def test_one_attempt_at_a_time_across_nodes(pg: Store) -> None:
    a = SharedLanes(Jobs(pg, "node-a", LEASE), 1)
    b = SharedLanes(Jobs(pg, "node-b", LEASE), 1)
    slot = await a.enter("whk_1")
    assert slot == "webhook-lane:whk_1:0"
    assert await a.enter("whk_1") is None  # this node's own second attempt waits too
    assert await b.enter("whk_1") is None
    assert await b.enter("whk_2") is not None  # another webhook's lane is its own
    await a.leave(slot)
    assert await b.enter("whk_1") == "webhook-lane:whk_1:0"


async def test_a_lane_of_two_and_a_dead_node_s_slot(pg: Store) -> None:
    a = SharedLanes(Jobs(pg, "node-a", LEASE), 2)
    b = SharedLanes(Jobs(pg, "node-b", LEASE), 2)
    assert await a.enter("whk_1") == "webhook-lane:whk_1:0"
    assert await b.enter("whk_1") == "webhook-lane:whk_1:1"
    assert await a.enter("whk_1") is None
    # node C held a slot and died: its lease ran out, the slot is free again
    past = datetime.now(UTC) - timedelta(seconds=60)
    await b.leave("webhook-lane:whk_1:1")
    assert await pg.jobs.take("webhook-lane:whk_1:1", "node-c", "dead", past, LEASE)
    assert await a.enter("whk_1") == "webhook-lane:whk_1:1"


async def test_a_slot_this_node_could_not_let_go_is_taken_back(pg: Store) -> None:
    jobs = Jobs(pg, "node-a", LEASE)
    lanes = SharedLanes(jobs, 1)
    assert await lanes.enter("whk_1") is not None
    lanes._held.clear()  # as if the release had failed: the claim is still there
    assert await SharedLanes(Jobs(pg, "node-b", LEASE), 1).enter("whk_1") is None
    assert await lanes.enter("whk_1") == "webhook-lane:whk_1:0"


async def test_a_slot_being_let_go_is_not_taken_again_meanwhile(pg: Store) -> None:
    """Entering while the previous attempt's release is on its way would have that
    release delete the new attempt's claim, and another node would send alongside."""
    lanes = SharedLanes(Jobs(pg, "node-a", LEASE), 1)
    slot = await lanes.enter("whk_1")
    assert slot is not None
    leaving = asyncio.ensure_future(lanes.leave(slot))
    await asyncio.sleep(0)  # the release is on its way to the database
    assert await lanes.enter("whk_1") is None
    await leaving
    again = await lanes.enter("whk_1")
    assert again == slot
    assert await SharedLanes(Jobs(pg, "node-b", LEASE), 1).enter("whk_1") is None
