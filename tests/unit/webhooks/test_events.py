"""Event bodies (what gets signed) and the hub's promise not to break its callers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from control_api.webhooks.events import EVENT_TYPES, Event, EventType, Resource
from control_api.webhooks.hub import EventHub


def test_body_is_compact_json_with_millisecond_utc_time() -> None:
    at = datetime(2026, 11, 22, 16, 5, 7, 123456, tzinfo=UTC)
    body = Event("evt_1", "stream.live", at, "env_1", {"streamId": "ls_1"}).body()
    assert body == (
        '{"id":"evt_1","type":"stream.live","createdAt":"2026-11-22T16:05:07.123Z",'
        '"environmentId":"env_1","data":{"streamId":"ls_1"}}'
    )
    assert json.loads(body)["data"] == {"streamId": "ls_1"}


def test_the_api_enum_and_the_event_types_agree() -> None:
    assert EVENT_TYPES == (
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
    )


class _Broken:
    def event(self, type_: EventType, environment_id: str, resource: Resource) -> None:
        raise RuntimeError("listener bug")


class _Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, Any]] = []

    def event(self, type_: EventType, environment_id: str, resource: Resource) -> None:
        self.seen.append((type_, environment_id, resource))


def test_a_failing_listener_neither_raises_nor_starves_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = EventHub()
    recorder = _Recorder()
    hub.listeners.extend([_Broken(), recorder])
    hub.emit("media.ready", "env_1", {"mediaId": "med_1"})
    assert recorder.seen == [("media.ready", "env_1", {"mediaId": "med_1"})]
    assert "event listener failed on media.ready" in caplog.text
