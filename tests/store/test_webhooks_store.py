"""The webhook outbox on SQLite and PostgreSQL: fan-out, due order, lanes, retry, pruning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from control_api.store import Store
from control_api.store.webhooks import DELIVERED, FAILED, PENDING, QueuedEvent

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


def _event(env: str, n: int, type_: str = "stream.live") -> QueuedEvent:
    return QueuedEvent(f"evt_{n}", type_, env, T0 + timedelta(seconds=n), f'{{"n":{n}}}')


async def _setup(store: Store) -> tuple[str, str, str, str]:
    env, _ = await store.environments.ensure("default")
    other, _ = await store.environments.ensure("other")
    a = await store.webhooks.create(env.id, "https://a.example/", ["stream.live"], "s" * 16, T0)
    b = await store.webhooks.create(
        env.id, "https://b.example/", ["stream.live", "stream.ended"], "t" * 16, T0
    )
    return env.id, other.id, a.id, b.id


async def test_enqueue_fans_out_to_subscribed_webhooks_of_the_environment(store: Store) -> None:
    env, other, a, b = await _setup(store)
    queued = await store.webhooks.enqueue(
        [_event(env, 1), _event(env, 2, "stream.ended"), _event(other, 3)], DAY
    )
    assert queued == 3  # live → a and b; ended → b; other environment → nobody
    page_a = await store.webhooks.deliveries(a, 10, 0)
    page_b = await store.webhooks.deliveries(b, 10, 0)
    assert [d.event_id for d in page_a.items] == ["evt_1"]
    assert [d.event_id for d in page_b.items] == ["evt_2", "evt_1"]  # newest first
    row = page_a.items[0]
    assert (row.status, row.attempts, row.payload) == (PENDING, 0, '{"n":1}')
    assert row.next_attempt_at == T0 + timedelta(seconds=1)
    assert row.give_up_at == T0 + timedelta(seconds=1) + DAY


async def test_due_is_oldest_first_and_skips_busy_rows_and_full_lanes(store: Store) -> None:
    env, _, a, b = await _setup(store)
    await store.webhooks.enqueue([_event(env, n) for n in (3, 1, 2)], DAY)
    now = T0 + timedelta(minutes=1)
    due = await store.webhooks.due(now, (), (), 10)
    assert [d.event_id for d in due] == ["evt_1", "evt_1", "evt_2", "evt_2", "evt_3", "evt_3"]
    assert {d.url for d in due if d.webhook_id == a} == {"https://a.example/"}
    busy = [d.delivery_id for d in due[:2]]
    assert [d.event_id for d in await store.webhooks.due(now, busy, [a], 10)] == [
        "evt_2",
        "evt_3",
    ]
    assert await store.webhooks.due(T0, (), (), 10) == []  # nothing due yet
    assert await store.webhooks.next_due((), ()) == T0 + timedelta(seconds=1)
    assert await store.webhooks.next_due((), [a, b]) is None


async def test_record_retry_prune_and_delete(store: Store) -> None:
    env, _, a, _ = await _setup(store)
    await store.webhooks.enqueue([_event(env, 1)], DAY)
    [row] = (await store.webhooks.deliveries(a, 10, 0)).items
    later = T0 + timedelta(hours=30)
    await store.webhooks.record(
        row.id, status=FAILED, attempts=9, next_attempt_at=None, response_status=500
    )
    retried = await store.webhooks.retry(a, row.id, later)
    assert retried is not None
    assert (retried.status, retried.next_attempt_at, retried.attempts) == (PENDING, later, 9)
    assert retried.give_up_at == later  # past its window: one more attempt, not another day
    assert await store.webhooks.retry(a, "whd_nope", later) is None
    await store.webhooks.record(row.id, status=DELIVERED, delivered_at=later)
    assert await store.webhooks.prune(T0) == 0  # created after the cut-off: kept
    assert await store.webhooks.prune(T0 + timedelta(days=1)) == 1
    await store.webhooks.enqueue([_event(env, 2)], DAY)
    assert await store.webhooks.prune(T0 + timedelta(days=1)) == 0  # pending: never pruned
    assert await store.webhooks.delete(env, a)
    assert (await store.webhooks.deliveries(a, 10, 0)).total == 0
    assert not await store.webhooks.delete(env, a)
    assert await store.webhooks.count(env) == 1
