"""Multistream destinations of a live stream, and their live push status."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator
from pydantic.json_schema import SkipJsonSchema

from control_api.schemas.common import ApiModel, RequestModel, Timestamp
from server.push.destination_url import split_destination_url

PushState = Literal["idle", "connecting", "active", "error", "disabled"]


def _url(value: str | None) -> str | None:
    if value is not None:
        split_destination_url(value)  # raises ValueError naming what is wrong
    return value


_HOST = r"[A-Za-z0-9][A-Za-z0-9.\-]{0,62}"
_PORT = r"(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
_RTMP = rf"[Rr][Tt][Mm][Pp][Ss]?://{_HOST}(?::{_PORT})?(?:/[A-Za-z0-9._~!$&'()*+,;=:@%\-]+)+/?"
_SRT_OPTION = (
    r"(?:latency=[0-9]{1,4}|pbkeylen=(?:16|24|32)"
    r"|passphrase=[!-$'-~]{10,79}|streamid=[!-%'-~]{1,200})"
)
_SRT = rf"[Ss][Rr][Tt]://{_HOST}:{_PORT}(?:\?{_SRT_OPTION}(?:&{_SRT_OPTION})*)?"
URL_PATTERN = rf"^(?:{_RTMP}|{_SRT})$"
KEY_PATTERN = r"^[!-\"$-.0-~]+$"
"""Printable ASCII without "#" and "/": an RTMP stream name is the URL's last path
segment, so those would change its meaning. (An SRT ``#!::r=...`` stream id goes into
the URL as ``?streamid=``; it is taken out and kept secret the same way.)"""

DestinationUrl = Annotated[
    str,
    StringConstraints(max_length=2048, pattern=URL_PATTERN),
    Field(
        description="rtmp://host[:port]/app, rtmps://host[:port]/app or srt://host:port"
        "[?latency=ms&pbkeylen=16|24|32&passphrase=...&streamid=...]. The SRT passphrase "
        "and streamid are taken out of the URL, kept secret and never shown again."
    ),
]
StreamKey = Annotated[
    str,
    StringConstraints(min_length=1, max_length=512, pattern=KEY_PATTERN),
    Field(
        description="Write-only: appended to the URL as the RTMP stream name, or sent "
        "as the SRT streamid (overriding one in the URL). Never returned."
    ),
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Rendition = Annotated[
    str,
    StringConstraints(min_length=1, max_length=16),
    Field(
        description='What is pushed: "source" (default) or a rung of the stream\'s '
        'ladder such as "720p" (transcode.ladders); the source while the rung is not '
        "available (passthrough, or a source shorter than the rung)."
    ),
]


class DestinationCreate(RequestModel):
    url: DestinationUrl
    name: Name | SkipJsonSchema[None] = None
    stream_key: StreamKey | SkipJsonSchema[None] = None
    enabled: bool = True
    rendition: Rendition = "source"

    _check_url = field_validator("url")(_url)


class DestinationPatch(RequestModel):
    url: DestinationUrl | SkipJsonSchema[None] = None
    name: Name | SkipJsonSchema[None] = None
    stream_key: StreamKey | SkipJsonSchema[None] = None
    enabled: bool | SkipJsonSchema[None] = None
    rendition: Rendition | SkipJsonSchema[None] = None

    _check_url = field_validator("url")(_url)


class DestinationStatusOut(ApiModel):
    state: PushState = Field(
        description="idle (stream not live), connecting, active, error (retrying; see "
        "lastError and nextRetryAt) or disabled."
    )
    last_error: str | None = Field(
        None, description="The most recent failure (kept after recovering)."
    )
    connected_at: Timestamp | None = None
    bytes_sent: int = Field(0, description="Bytes sent in the current session.")
    reconnects: int = Field(0, description="Connection attempts after the first one.")
    dropped_frames: int = Field(
        0, description="Frames skipped (to the next keyframe) because the destination fell behind."
    )
    next_retry_at: Timestamp | None = None


class DestinationOut(ApiModel):
    destination_id: str
    stream_id: str
    name: str
    url: str = Field(description="The URL without stream key or passphrase.")
    enabled: bool
    rendition: str = Field(description='"source" or the rung pushed (e.g. "720p").')
    created_at: Timestamp
    updated_at: Timestamp
    status: DestinationStatusOut


class DestinationList(ApiModel):
    destinations: list[DestinationOut]
    total: int
