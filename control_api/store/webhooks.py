"""Webhooks and their deliveries: the durable outbox the dispatcher works from.

A delivery row is written for every (event, subscribed webhook) before any attempt,
and each attempt's outcome is written back to it. Whatever the process was doing
when it stopped, the rows say what is still owed: ``pending`` rows are resumed.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from control_api.credentials import new_id
from control_api.store.models import Webhook, WebhookDelivery
from control_api.store.paging import Page

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """An event as the outbox stores it: its body is final, attempts only add headers."""

    id: str
    type: str
    environment_id: str
    created_at: datetime
    body: str


@dataclass(frozen=True, slots=True)
class Due:
    """A delivery to attempt now, with what sending needs from its webhook."""

    delivery_id: str
    webhook_id: str
    event_id: str
    url: str
    secret: str
    payload: str
    attempts: int
    give_up_at: datetime


class WebhookRepo:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], shared: bool = False) -> None:
        """``shared``: several nodes' dispatchers read the same deliveries (PostgreSQL)."""
        self._sessions = sessions
        self._shared = shared

    # ------------------------------------------------------------ webhooks

    async def create(
        self, environment_id: str, url: str, events: list[str], secret: str, now: datetime
    ) -> Webhook:
        row = Webhook(
            id=new_id("whk"),
            environment_id=environment_id,
            url=url,
            events=events,
            secret=secret,
            created_at=now,
        )
        async with self._sessions.begin() as s:
            s.add(row)
        return row

    async def count(self, environment_id: str) -> int:
        async with self._sessions() as s:
            total = await s.scalar(
                select(func.count())
                .select_from(Webhook)
                .where(Webhook.environment_id == environment_id)
            )
        return int(total or 0)

    async def list(self, environment_id: str, limit: int, offset: int) -> Page[Webhook]:
        where = Webhook.environment_id == environment_id
        async with self._sessions() as s:
            total = await s.scalar(select(func.count()).select_from(Webhook).where(where))
            rows = await s.scalars(
                select(Webhook)
                .where(where)
                .order_by(Webhook.created_at.desc(), Webhook.id)
                .limit(limit)
                .offset(offset)
            )
            return Page(items=list(rows), total=int(total or 0))

    async def get(self, environment_id: str, webhook_id: str) -> Webhook | None:
        async with self._sessions() as s:
            return await s.scalar(
                select(Webhook).where(
                    Webhook.id == webhook_id, Webhook.environment_id == environment_id
                )
            )

    async def update(
        self, environment_id: str, webhook_id: str, fields: dict[str, Any]
    ) -> Webhook | None:
        """Pending deliveries keep their body and go to the new URL (they are owed)."""
        if fields:
            async with self._sessions.begin() as s:
                await s.execute(
                    update(Webhook)
                    .where(Webhook.id == webhook_id, Webhook.environment_id == environment_id)
                    .values(**fields)
                )
        return await self.get(environment_id, webhook_id)

    async def delete(self, environment_id: str, webhook_id: str) -> bool:
        """Its deliveries go with it (cascade): nothing is owed to a receiver removed."""
        async with self._sessions.begin() as s:
            await s.execute(
                delete(WebhookDelivery).where(
                    WebhookDelivery.webhook_id.in_(
                        select(Webhook.id).where(
                            Webhook.id == webhook_id, Webhook.environment_id == environment_id
                        )
                    )
                )
            )
            result = await s.execute(
                delete(Webhook).where(
                    Webhook.id == webhook_id, Webhook.environment_id == environment_id
                )
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # ------------------------------------------------------------ the outbox

    async def enqueue(self, events: Sequence[QueuedEvent], window: timedelta) -> int:
        """One delivery per subscribed webhook per event, in one transaction; return how many.

        A delivery is due at its event's time, which orders a receiver's deliveries.
        """
        queued = 0
        async with self._sessions.begin() as s:
            hooks: dict[str, list[Webhook]] = {}
            for event in events:
                if event.environment_id not in hooks:
                    rows = await s.scalars(
                        select(Webhook).where(Webhook.environment_id == event.environment_id)
                    )
                    hooks[event.environment_id] = list(rows)
                for hook in hooks[event.environment_id]:
                    if event.type not in hook.events:
                        continue
                    s.add(_delivery(hook.id, event, window))
                    queued += 1
        return queued

    async def due(
        self,
        now: datetime,
        busy_deliveries: Collection[str],
        full_webhooks: Collection[str],
        limit: int,
    ) -> Sequence[Due]:
        """Pending deliveries whose time has come, oldest first, skipping what is in
        flight and webhooks already at their concurrency (no head-of-line blocking)."""
        query = (
            select(WebhookDelivery, Webhook.url, Webhook.secret)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(WebhookDelivery.status == PENDING, WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.created_at)
            .limit(limit)
        )
        query = _excluding(query, busy_deliveries, full_webhooks)
        async with self._sessions() as s:
            rows = (await s.execute(query)).all()
        return [
            Due(
                delivery_id=d.id,
                webhook_id=d.webhook_id,
                event_id=d.event_id,
                url=url,
                secret=secret,
                payload=d.payload,
                attempts=d.attempts,
                give_up_at=d.give_up_at,
            )
            for d, url, secret in rows
        ]

    async def take(self, ids: Sequence[str], now: datetime, lease: float) -> set[str]:
        """Of the due deliveries about to be attempted, the ones this node may send.

        On a shared database each is taken for ``lease`` seconds (its next attempt
        moved past it, by one conditional UPDATE), so another node's dispatcher does
        not send it too; a node that dies mid-attempt leaves it due again when the
        lease is over (at-least-once). One process's database: all of them."""
        if not self._shared or not ids:
            return set(ids)
        statement = (
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id.in_(ids),
                WebhookDelivery.status == PENDING,
                WebhookDelivery.next_attempt_at <= now,
            )
            .values(next_attempt_at=now + timedelta(seconds=lease))
            .returning(WebhookDelivery.id)
        )
        async with self._sessions.begin() as s:
            return set(await s.scalars(statement))

    async def next_due(
        self, busy_deliveries: Collection[str], full_webhooks: Collection[str]
    ) -> datetime | None:
        query = select(func.min(WebhookDelivery.next_attempt_at)).where(
            WebhookDelivery.status == PENDING
        )
        query = _excluding(query, busy_deliveries, full_webhooks)
        async with self._sessions() as s:
            when: datetime | None = await s.scalar(query)
        return when

    async def record(self, delivery_id: str, **fields: Any) -> None:
        async with self._sessions.begin() as s:
            await s.execute(
                update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(**fields)
            )

    async def prune(self, before: datetime) -> int:
        """Forget finished deliveries older than the retention: the history stays bounded."""
        async with self._sessions.begin() as s:
            result = await s.execute(
                delete(WebhookDelivery).where(
                    WebhookDelivery.status != PENDING, WebhookDelivery.created_at < before
                )
            )
        return int(result.rowcount)  # type: ignore[attr-defined]

    # ------------------------------------------------------------ the API's view

    async def deliveries(self, webhook_id: str, limit: int, offset: int) -> Page[WebhookDelivery]:
        """The page and the total from one statement: deliveries are added while the page
        is read (the dispatcher runs beside the API), and a count taken by a statement of
        its own could disagree with the rows it is sent with."""
        where = WebhookDelivery.webhook_id == webhook_id
        async with self._sessions() as s:
            found = (
                await s.execute(
                    select(WebhookDelivery, func.count().over())
                    .where(where)
                    .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
            if found:
                return Page(items=[row for row, _ in found], total=int(found[0][1]))
            if offset == 0:  # the statement saw none: a count after it could see a new one
                return Page(items=[], total=0)
            # past the end: no row carries the count
            total = await s.scalar(select(func.count()).select_from(WebhookDelivery).where(where))
            return Page(items=[], total=int(total or 0))

    async def delivery(self, webhook_id: str, delivery_id: str) -> WebhookDelivery | None:
        async with self._sessions() as s:
            return await s.scalar(
                select(WebhookDelivery).where(
                    WebhookDelivery.id == delivery_id, WebhookDelivery.webhook_id == webhook_id
                )
            )

    async def retry(
        self, webhook_id: str, delivery_id: str, now: datetime
    ) -> WebhookDelivery | None:
        """Due now again, whatever its state. A delivery past its retry window gets one
        attempt (its window is moved to now), not another day of retries."""
        row = await self.delivery(webhook_id, delivery_id)
        if row is None:
            return None
        give_up_at = max(row.give_up_at, now)
        await self.record(delivery_id, status=PENDING, next_attempt_at=now, give_up_at=give_up_at)
        return await self.delivery(webhook_id, delivery_id)


def _delivery(webhook_id: str, event: QueuedEvent, window: timedelta) -> WebhookDelivery:
    return WebhookDelivery(
        id=new_id("whd"),
        webhook_id=webhook_id,
        event_id=event.id,
        event_type=event.type,
        payload=event.body,
        status=PENDING,
        attempts=0,
        next_attempt_at=event.created_at,
        give_up_at=event.created_at + window,
        created_at=event.created_at,
    )


def _excluding(query: Any, busy_deliveries: Collection[str], full_webhooks: Collection[str]) -> Any:
    if busy_deliveries:
        query = query.where(WebhookDelivery.id.not_in(list(busy_deliveries)))
    if full_webhooks:
        query = query.where(WebhookDelivery.webhook_id.not_in(list(full_webhooks)))
    return query
