"""Channels: the output profile, schedules and the media queue."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    Field,
    SerializerFunctionWrapHandler,
    Strict,
    model_serializer,
)
from pydantic.json_schema import SkipJsonSchema

from control_api.schemas.common import ApiModel, IntegralFloat, RequestModel, Timestamp

Unset = SkipJsonSchema[None]
Source = Literal["encoder", "queue"]
Repeat = Literal["none", "daily", "weekly"]
ScheduleTime = Annotated[
    AwareDatetime,
    Strict(False),  # an ISO 8601 string with its offset, e.g. 2026-12-07T10:00:00Z
    Field(json_schema_extra={"format": "date-time"}),
]


class ProfileIn(RequestModel):
    """Fields left out take the configured defaults (``[playout]``)."""

    width: Annotated[int, Field(ge=16, le=7680, multiple_of=2), IntegralFloat] | Unset = None
    height: Annotated[int, Field(ge=16, le=4320, multiple_of=2), IntegralFloat] | Unset = None
    fps: Annotated[int, Field(ge=1, le=120), IntegralFloat] | Unset = None
    video_bitrate: Annotated[int, Field(ge=100_000, le=100_000_000), IntegralFloat] | Unset = None
    audio_bitrate: Annotated[int, Field(ge=32_000, le=512_000), IntegralFloat] | Unset = None


class ProfileOut(ApiModel):
    width: int
    height: int
    fps: int
    video_bitrate: int
    audio_bitrate: int


class QueueItemCreate(RequestModel):
    """``position`` is 0-based; left out (or past the end), the item is appended."""

    media_id: Annotated[str, Field(min_length=1, max_length=40)]
    position: Annotated[int, Field(ge=0, le=1_000_000), IntegralFloat] | Unset = None


class QueueItemPatch(RequestModel):
    position: Annotated[int, Field(ge=0, le=1_000_000), IntegralFloat]


class QueueItemOut(ApiModel):
    item_id: str
    media_id: str
    name: str
    duration_seconds: float | None = None
    position: int


class NowPlaying(ApiModel):
    item_id: str
    media_id: str
    position_seconds: float
    started_at: Timestamp


class QueueList(ApiModel):
    items: list[QueueItemOut]
    total: int
    now_playing: NowPlaying | None = Field(description="The item on air; null when not playing.")

    @model_serializer(mode="wrap")
    def _null_now_playing(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Responses leave out nulls, but the contract shows ``nowPlaying: null``."""
        data: dict[str, Any] = handler(self)
        data.setdefault("nowPlaying", None)
        return data
