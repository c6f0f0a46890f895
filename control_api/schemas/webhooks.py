"""Webhooks (event receivers) and their deliveries."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator
from pydantic.json_schema import SkipJsonSchema

from control_api.schemas.common import ApiModel, RequestModel, Timestamp
from control_api.webhooks.events import EventType

_PORT = (
    r"(?::(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}"
    r"|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?"
)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])"
URL_PATTERN = rf"^[Hh][Tt][Tt][Pp][Ss]?://{_HOST}{_PORT}(?:[/?#][!-~]*)?$"
"""http(s), a host, an optional port, printable ASCII after: no credentials in the URL
(it is shown in every listing; the secret is what authenticates)."""

WebhookUrl = Annotated[
    str,
    StringConstraints(max_length=2048, pattern=URL_PATTERN),
    Field(description="http:// or https:// URL with a host; no user:password part."),
]
Secret = Annotated[
    str,
    StringConstraints(min_length=16, max_length=128, pattern=r"^[!-~]+$"),
    Field(description="Signing secret (16-128 printable ASCII characters); generated if left out."),
]
DeliveryStatus = Literal["pending", "delivered", "failed"]


class WebhookCreate(RequestModel):
    url: WebhookUrl
    events: Annotated[list[EventType], Field(min_length=1, max_length=16)]
    secret: Secret | SkipJsonSchema[None] = None

    @field_validator("events")
    @classmethod
    def _once_each(cls, events: list[EventType]) -> list[EventType]:
        return list(dict.fromkeys(events))


class WebhookPatch(RequestModel):
    url: WebhookUrl | SkipJsonSchema[None] = None
    events: (
        Annotated[list[EventType], Field(min_length=1, max_length=16)] | SkipJsonSchema[None]
    ) = None

    @field_validator("events")
    @classmethod
    def _once_each(cls, events: list[EventType] | None) -> list[EventType] | None:
        return None if events is None else list(dict.fromkeys(events))


class WebhookOut(ApiModel):
    webhook_id: str
    url: str
    events: list[EventType]
    created_at: Timestamp
    secret: str | None = Field(
        None, description="Only in the response to creation: store it to verify signatures."
    )


class WebhookList(ApiModel):
    webhooks: list[WebhookOut]
    total: int


class DeliveryOut(ApiModel):
    delivery_id: str
    webhook_id: str
    event_id: str
    event_type: EventType
    status: DeliveryStatus
    attempts: int
    response_status: int | None = Field(None, description="HTTP status of the last attempt.")
    error: str | None = Field(None, description="Why the last attempt failed.")
    created_at: Timestamp
    last_attempt_at: Timestamp | None = None
    next_attempt_at: Timestamp | None = None
    delivered_at: Timestamp | None = None


class DeliveryList(ApiModel):
    deliveries: list[DeliveryOut]
    total: int
