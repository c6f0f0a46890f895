"""Folders: a tree of folders per environment, and moving media into them."""

from __future__ import annotations

from typing import Any

from control_api.appkeys import STORE
from control_api.presenters.folders import folder_out
from control_api.problems import conflict, not_found
from control_api.router import Call
from control_api.routes import api
from control_api.schemas.folders import (
    FolderCreate,
    FolderDeleteQuery,
    FolderList,
    FolderOut,
    FolderPatch,
    FolderQuery,
    MoveMedia,
)
from control_api.store.folders import FolderCycle, FolderNotEmpty, FolderView, UnknownFolder
from control_api.store.media import UnknownMedia


async def _folder(call: Call[Any, Any]) -> FolderOut:
    view = await call.request.app[STORE].folders.get(call.env, call.path("folderId"))
    if view is None:
        raise not_found("folder", call.path("folderId"))
    return folder_out(view)


@api.route(
    "GET",
    "/v1/folders",
    summary="List folders by name (all, or those in one parent)",
    tag="folders",
    query=FolderQuery,
    response=FolderList,
)
async def list_folders(call: Call[None, FolderQuery]) -> FolderList:
    q = call.query
    page = await call.request.app[STORE].folders.list(call.env, q.limit, q.offset, q.parent_id)
    return FolderList(folders=[folder_out(v) for v in page.items], total=page.total)


@api.route(
    "POST",
    "/v1/folders",
    summary="Create a folder (in the root, or in parentId)",
    tag="folders",
    body=FolderCreate,
    response=FolderOut,
    status=201,
    errors=(404,),
)
async def create_folder(call: Call[FolderCreate, None]) -> FolderOut:
    try:
        row = await call.request.app[STORE].folders.create(
            call.env, call.body.name, call.body.parent_id
        )
    except UnknownFolder as exc:
        raise not_found("folder", str(exc)) from None
    return folder_out(FolderView(row, 0))


@api.route(
    "GET",
    "/v1/folders/{folderId}",
    summary="Get a folder",
    tag="folders",
    response=FolderOut,
    errors=(404,),
)
async def get_folder(call: Call[None, None]) -> FolderOut:
    return await _folder(call)


@api.route(
    "PATCH",
    "/v1/folders/{folderId}",
    summary="Rename a folder or move it (parentId, null for the root)",
    tag="folders",
    body=FolderPatch,
    response=FolderOut,
    errors=(404, 409),
)
async def update_folder(call: Call[FolderPatch, None]) -> FolderOut:
    fields = call.body.model_dump(exclude_unset=True)
    try:
        view = await call.request.app[STORE].folders.update(call.env, call.path("folderId"), fields)
    except UnknownFolder as exc:
        raise not_found("folder", str(exc)) from None
    except FolderCycle:
        raise conflict("a folder cannot move into itself or one of its subfolders") from None
    if view is None:
        raise not_found("folder", call.path("folderId"))
    return folder_out(view)


@api.route(
    "DELETE",
    "/v1/folders/{folderId}",
    summary="Delete a folder (409 if not empty, unless ?recursive=true)",
    tag="folders",
    query=FolderDeleteQuery,
    status=204,
    errors=(404, 409),
    description=(
        "With `recursive=true` the folder's subfolders are deleted too and all their "
        "media move to the root; media are never deleted with a folder."
    ),
)
async def delete_folder(call: Call[None, FolderDeleteQuery]) -> None:
    try:
        deleted = await call.request.app[STORE].folders.delete(
            call.env, call.path("folderId"), call.query.recursive
        )
    except FolderNotEmpty:
        raise conflict(
            "the folder holds media or folders; move them out or pass ?recursive=true"
        ) from None
    if not deleted:
        raise not_found("folder", call.path("folderId"))


@api.route(
    "POST",
    "/v1/folders/{folderId}/media",
    summary="Move media into the folder",
    tag="folders",
    body=MoveMedia,
    response=FolderOut,
    errors=(404,),
    description="All or nothing: if any id is unknown, nothing moves (404 names them).",
)
async def move_media_to_folder(call: Call[MoveMedia, None]) -> FolderOut:
    try:
        await call.request.app[STORE].media.move(
            call.env, call.path("folderId"), call.body.media_ids
        )
    except UnknownFolder:
        raise not_found("folder", call.path("folderId")) from None
    except UnknownMedia as exc:
        raise not_found("media item", ", ".join(exc.ids)) from None
    return await _folder(call)
