"""Event types, what an event is about, and the body every delivery sends."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from control_api.store.models import Destination, LiveStream, Media, Task

EventType = Literal[
    "stream.connecting",
    "stream.live",
    "stream.ended",
    "stream.error",
    "destination.error",
    "media.ready",
    "task.failed",
    "recording.ready",
    "channel.item.started",
    "channel.item.failed",
    "recording.failed",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)

Resource = LiveStream | Media | Task | Destination | Mapping[str, Any]
"""What an event is about: a row (rendered as the API shows it) or a ready-made object."""


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    type: str
    created_at: datetime
    environment_id: str
    data: Mapping[str, Any]

    def body(self) -> str:
        """The exact bytes every attempt sends (compact JSON, so signatures are stable)."""
        created = self.created_at.astimezone(UTC).isoformat(timespec="milliseconds")
        return json.dumps(
            {
                "id": self.id,
                "type": self.type,
                "createdAt": created.replace("+00:00", "Z"),
                "environmentId": self.environment_id,
                "data": self.data,
            },
            separators=(",", ":"),
        )
