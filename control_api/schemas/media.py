"""Media items, their probe results, and URL imports."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints
from pydantic.json_schema import SkipJsonSchema

from control_api.schemas.clearable import ClearableRequest
from control_api.schemas.common import ApiModel, PageQuery, RequestModel, Timestamp

MediaStatus = Literal["uploading", "processing", "ready", "error"]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
ResourceId = Annotated[str, StringConstraints(min_length=1, max_length=40)]
# Python's \s also matches \x1c-\x1f and \x85, ECMAScript's (the schema's) \ufeff:
# spelling out the union keeps the schema and the validator agreeing on every string.
_EDGE = r"[^\s\x1c-\x1f\x85\ufeff]"
TagName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=rf"^{_EDGE}(?:.*{_EDGE})?$"),
    Field(description="1-64 characters, no leading or trailing space."),
]
TagList = Annotated[
    list[TagName],
    Field(max_length=50, description="Tag names; the list replaces the item's tags."),
]
ImportUrl = Annotated[
    str,
    StringConstraints(max_length=2048, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#]+[^\s]*$"),
    Field(description="An http:// or https:// URL the server downloads."),
]


class VideoInfo(ApiModel):
    codec: str
    width: int
    height: int
    fps: float | None = None


class AudioInfo(ApiModel):
    codec: str
    sample_rate: int
    channels: int


PlaybackPolicy = Literal["public", "private"]


class MediaPlayback(ApiModel):
    hls_url: str = Field(description="HLS VOD (fMP4 segments cut at keyframes, no re-encoding).")
    mp4_url: str | None = Field(
        None,
        description="The file as a seekable MP4 (Range requests); absent when MP4 "
        "cannot carry its codecs.",
    )


class MediaOut(ApiModel):
    media_id: str
    name: str
    folder_id: str | None = None
    tags: list[str]
    status: MediaStatus
    error: str | None = Field(None, description="Why the item is in status error.")
    source: Literal["upload", "import", "recording"]
    stream_id: str | None = Field(None, description="The recorded stream (recordings only).")
    session_id: str | None = Field(None, description="The recorded session (recordings only).")
    size_bytes: int
    duration_seconds: float | None = None
    container: str | None = None
    video: VideoInfo | None = None
    audio: AudioInfo | None = None
    playback_policy: PlaybackPolicy
    playback: MediaPlayback | None = Field(
        None,
        description="Only on ready items. Private items need `?token=` from "
        "POST /v1/media/{mediaId}/playback-tokens on these URLs.",
    )
    created_at: Timestamp


class MediaList(ApiModel):
    media: list[MediaOut]
    total: int


class MediaQuery(PageQuery):
    folder_id: str | None = Field(None, description="Only media directly in this folder.")
    tag: str | None = Field(None, description="Only media carrying this tag (by name).")


class MediaPatch(ClearableRequest):
    clearable: ClassVar[frozenset[str]] = frozenset({"folderId"})

    name: Name | SkipJsonSchema[None] = None
    folder_id: ResourceId | None = Field(None, description="A folder, or null for the root.")
    tags: TagList | SkipJsonSchema[None] = None
    playback_policy: PlaybackPolicy | SkipJsonSchema[None] = None


class ImportCreate(RequestModel):
    url: ImportUrl
    name: Name | SkipJsonSchema[None] = None
    folder_id: ResourceId | SkipJsonSchema[None] = None


__all__ = ["PageQuery"]
