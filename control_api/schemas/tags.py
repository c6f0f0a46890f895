"""Tags: names unique per environment."""

from __future__ import annotations

from control_api.schemas.common import ApiModel, RequestModel
from control_api.schemas.media import TagName


class TagCreate(RequestModel):
    name: TagName


class TagPatch(RequestModel):
    name: TagName


class TagOut(ApiModel):
    tag_id: str
    name: str
    media_count: int


class TagList(ApiModel):
    tags: list[TagOut]
    total: int
