"""How a webhook (its secret only once, when it is created) and a delivery are shown."""

from __future__ import annotations

from control_api.schemas.webhooks import DeliveryOut, WebhookOut
from control_api.store.models import Webhook, WebhookDelivery


def webhook_out(row: Webhook, secret: str | None = None) -> WebhookOut:
    return WebhookOut(
        webhook_id=row.id,
        url=row.url,
        events=row.events,
        created_at=row.created_at,
        secret=secret,
    )


def delivery_out(row: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        delivery_id=row.id,
        webhook_id=row.webhook_id,
        event_id=row.event_id,
        event_type=row.event_type,
        status=row.status,
        attempts=row.attempts,
        response_status=row.response_status,
        error=row.error,
        created_at=row.created_at,
        last_attempt_at=row.last_attempt_at,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
    )
