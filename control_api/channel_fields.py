"""The channel fields of a live stream's create and change requests, checked together.

A schedule is only usable as a whole (a daily repeat needs both ends, an end after
its start), so the checks run on what the stream will have after the request.
"""

from __future__ import annotations

from typing import Any

from control_api.problems import validation
from control_api.schemas.live_streams import StreamCreate
from control_api.store.models import LiveStream
from server.playout.schedule import Schedule, problem
from server.settings import PlayoutSettings

CHANNEL_ONLY = ("loop", "scheduled_start", "scheduled_end", "schedule_repeat", "profile")


def _check(schedule: Schedule) -> None:
    found = problem(schedule)
    if found is not None:
        field = "scheduleRepeat" if "scheduleRepeat" in found else "scheduledEnd"
        raise validation(field, found)


def channel_fields(body: StreamCreate, defaults: PlayoutSettings) -> dict[str, Any]:
    """The columns of a new channel (profile with the configured defaults filled in);
    nothing for an encoder's stream, which may not set them."""
    if body.source != "queue":
        for name in CHANNEL_ONLY:
            if name in body.model_fields_set:
                raise validation(_camel(name), "only a channel (source: queue) has this field")
        return {}
    _check(Schedule(body.scheduled_start, body.scheduled_end, body.schedule_repeat))
    given = body.profile.model_dump(exclude_none=True) if body.profile else {}
    profile = {
        "width": defaults.width,
        "height": defaults.height,
        "fps": defaults.fps,
        "videoBitrate": defaults.video_bitrate,
        "audioBitrate": defaults.audio_bitrate,
    }
    profile.update({_camel(k): v for k, v in given.items()})
    return {"profile": profile}


def patched_schedule(row: LiveStream, fields: dict[str, Any]) -> None:
    """A change of loop or schedule: only for a channel, and the result must be usable."""
    if row.source != "queue":
        name = next(n for n in CHANNEL_ONLY if n in fields)
        raise validation(_camel(name), "only a channel (source: queue) has this field")
    _check(
        Schedule(
            fields.get("scheduled_start", row.scheduled_start),
            fields.get("scheduled_end", row.scheduled_end),
            fields.get("schedule_repeat", row.schedule_repeat),
        )
    )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
