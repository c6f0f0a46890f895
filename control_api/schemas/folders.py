"""Folders and moving media into them."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from control_api.schemas.clearable import ClearableRequest
from control_api.schemas.common import ApiModel, PageQuery, QueryModel, RequestModel, Timestamp
from control_api.schemas.media import Name, ResourceId


class FolderCreate(RequestModel):
    name: Name
    parent_id: ResourceId | SkipJsonSchema[None] = None


class FolderPatch(ClearableRequest):
    clearable: ClassVar[frozenset[str]] = frozenset({"parentId"})

    name: Name | SkipJsonSchema[None] = None
    parent_id: ResourceId | None = Field(None, description="A folder, or null for the root.")


class FolderOut(ApiModel):
    folder_id: str
    name: str
    parent_id: str | None = None
    media_count: int = Field(description="Media directly in this folder.")
    created_at: Timestamp


class FolderList(ApiModel):
    folders: list[FolderOut]
    total: int


class FolderQuery(PageQuery):
    parent_id: str | None = Field(None, description="Only the folders directly in this one.")


class FolderDeleteQuery(QueryModel):
    recursive: bool = Field(
        False, description="Also delete subfolders, moving all their media to the root."
    )


class MoveMedia(RequestModel):
    media_ids: list[ResourceId] = Field(min_length=1, max_length=100)
