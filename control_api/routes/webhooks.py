"""Webhooks: register receivers, list deliveries, resend one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from control_api.appkeys import SETTINGS, STORE, WEBHOOKS
from control_api.presenters.webhooks import delivery_out, webhook_out
from control_api.problems import conflict, not_found, validation
from control_api.router import Call
from control_api.routes import api
from control_api.schemas.common import PageQuery
from control_api.schemas.webhooks import (
    DeliveryList,
    DeliveryOut,
    WebhookCreate,
    WebhookList,
    WebhookOut,
    WebhookPatch,
)
from control_api.store.models import Webhook
from control_api.webhooks.signing import new_secret
from control_api.webhooks.targets import url_refusal


async def _check_target(call: Call[Any, Any], url: str) -> None:
    """A URL the delivery guard would refuse is refused now, with the reason and the
    setting, instead of being stored and failing quietly on every event."""
    app = call.request.app
    reason = await url_refusal(app[WEBHOOKS].targets, url, app[SETTINGS].webhooks.connect_timeout)
    if reason is not None:
        raise validation("url", f"this server will not deliver to it: {reason}")


async def _webhook(call: Call[Any, Any]) -> Webhook:
    webhook_id = call.path("webhookId")
    row = await call.request.app[STORE].webhooks.get(call.env, webhook_id)
    if row is None:
        raise not_found("webhook", webhook_id)
    return row


@api.route(
    "POST",
    "/v1/webhooks",
    summary="Register a webhook (the signing secret is shown once)",
    tag="webhooks",
    body=WebhookCreate,
    response=WebhookOut,
    status=201,
    errors=(409, 422),
    description="Each event is POSTed as JSON with a `Relaycast-Signature` header; "
    "see the README for how to verify it.",
)
async def create_webhook(call: Call[WebhookCreate, None]) -> WebhookOut:
    store = call.request.app[STORE]
    limit = call.request.app[SETTINGS].webhooks.max_webhooks_per_environment
    if await store.webhooks.count(call.env) >= limit:
        raise conflict(f"this environment already has {limit} webhooks; delete one first")
    await _check_target(call, call.body.url)
    secret = call.body.secret or new_secret()
    row = await store.webhooks.create(
        call.env, call.body.url, list(call.body.events), secret, datetime.now(UTC)
    )
    return webhook_out(row, secret)


@api.route(
    "GET",
    "/v1/webhooks",
    summary="List webhooks, newest first",
    tag="webhooks",
    query=PageQuery,
    response=WebhookList,
)
async def list_webhooks(call: Call[None, PageQuery]) -> WebhookList:
    page = await call.request.app[STORE].webhooks.list(
        call.env, call.query.limit, call.query.offset
    )
    return WebhookList(webhooks=[webhook_out(r) for r in page.items], total=page.total)


@api.route(
    "GET",
    "/v1/webhooks/{webhookId}",
    summary="Get a webhook",
    tag="webhooks",
    response=WebhookOut,
    errors=(404,),
)
async def get_webhook(call: Call[None, None]) -> WebhookOut:
    return webhook_out(await _webhook(call))


@api.route(
    "PATCH",
    "/v1/webhooks/{webhookId}",
    summary="Change a webhook's URL or events (pending deliveries go to the new URL)",
    tag="webhooks",
    body=WebhookPatch,
    response=WebhookOut,
    errors=(404, 422),
)
async def update_webhook(call: Call[WebhookPatch, None]) -> WebhookOut:
    row = await _webhook(call)
    fields: dict[str, Any] = {}
    if call.body.url is not None:
        await _check_target(call, call.body.url)
        fields["url"] = call.body.url
    if call.body.events is not None:
        fields["events"] = list(call.body.events)
    updated = await call.request.app[STORE].webhooks.update(call.env, row.id, fields)
    if updated is None:  # deleted meanwhile
        raise not_found("webhook", row.id)
    return webhook_out(updated)


@api.route(
    "DELETE",
    "/v1/webhooks/{webhookId}",
    summary="Delete a webhook and its pending deliveries",
    tag="webhooks",
    status=204,
    errors=(404,),
)
async def delete_webhook(call: Call[None, None]) -> None:
    if not await call.request.app[STORE].webhooks.delete(call.env, call.path("webhookId")):
        raise not_found("webhook", call.path("webhookId"))


@api.route(
    "GET",
    "/v1/webhooks/{webhookId}/deliveries",
    summary="Recent deliveries, newest first, with the last attempt's outcome",
    tag="webhooks",
    query=PageQuery,
    response=DeliveryList,
    errors=(404,),
)
async def list_webhook_deliveries(call: Call[None, PageQuery]) -> DeliveryList:
    webhook = await _webhook(call)
    page = await call.request.app[STORE].webhooks.deliveries(
        webhook.id, call.query.limit, call.query.offset
    )
    return DeliveryList(deliveries=[delivery_out(r) for r in page.items], total=page.total)


@api.route(
    "POST",
    "/v1/webhooks/{webhookId}/deliveries/{deliveryId}/retry",
    summary="Send a delivery again now (also one that was delivered or gave up)",
    tag="webhooks",
    response=DeliveryOut,
    status=202,
    errors=(404,),
)
async def retry_webhook_delivery(call: Call[None, None]) -> DeliveryOut:
    webhook = await _webhook(call)
    delivery_id = call.path("deliveryId")
    row = await call.request.app[STORE].webhooks.retry(webhook.id, delivery_id, datetime.now(UTC))
    if row is None:
        raise not_found("delivery", delivery_id)
    call.request.app[WEBHOOKS].wake()
    return delivery_out(row)
