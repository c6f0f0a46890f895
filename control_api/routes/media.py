"""Media items: list and filter, read, change (name, folder, tags), delete, import a URL."""

from __future__ import annotations

from control_api.appkeys import LIBRARY, STORE
from control_api.media_library.importer import IMPORT_TASK
from control_api.presenters.media import media_out
from control_api.presenters.tasks import task_out
from control_api.problems import not_found
from control_api.router import Call
from control_api.routes import api
from control_api.schemas.media import (
    ImportCreate,
    MediaList,
    MediaOut,
    MediaPatch,
    MediaQuery,
)
from control_api.schemas.tasks import TaskOut
from control_api.store.folders import UnknownFolder


@api.route(
    "GET",
    "/v1/media",
    summary="List media, newest first (filter by folder or tag)",
    tag="media",
    query=MediaQuery,
    response=MediaList,
)
async def list_media(call: Call[None, MediaQuery]) -> MediaList:
    q = call.query
    page = await call.request.app[STORE].media.list(
        call.env, q.limit, q.offset, folder_id=q.folder_id, tag=q.tag
    )
    return MediaList(media=[media_out(r) for r in page.items], total=page.total)


@api.route(
    "GET",
    "/v1/media/{mediaId}",
    summary="Get a media item",
    tag="media",
    response=MediaOut,
    allows_restricted_keys=True,
    errors=(404,),
)
async def get_media(call: Call[None, None]) -> MediaOut:
    row = await call.request.app[STORE].media.get(call.env, call.path("mediaId"))
    if row is None:
        raise not_found("media item", call.path("mediaId"))
    return media_out(row)


@api.route(
    "PATCH",
    "/v1/media/{mediaId}",
    summary="Rename, move (folderId, null for the root) or retag a media item",
    tag="media",
    body=MediaPatch,
    response=MediaOut,
    allows_restricted_keys=True,
    errors=(404,),
    description="`tags` replaces the item's tags; names not used before become new tags.",
)
async def update_media(call: Call[MediaPatch, None]) -> MediaOut:
    fields = call.body.model_dump(exclude_unset=True)
    try:
        row = await call.request.app[STORE].media.update(call.env, call.path("mediaId"), fields)
    except UnknownFolder as exc:
        raise not_found("folder", str(exc)) from None
    if row is None:
        raise not_found("media item", call.path("mediaId"))
    return media_out(row)


@api.route(
    "DELETE",
    "/v1/media/{mediaId}",
    summary="Delete a media item and its file",
    tag="media",
    status=204,
    errors=(404,),
)
async def delete_media(call: Call[None, None]) -> None:
    library = call.request.app[LIBRARY]
    row = await library.store.media.delete(call.env, call.path("mediaId"))
    if row is None:
        raise not_found("media item", call.path("mediaId"))
    await library.files.remove(row.path)
    await library.files.remove_part(row.path)


@api.route(
    "POST",
    "/v1/media/import",
    summary="Import a file from an http(s) URL (a task; follow it at /v1/tasks/{taskId})",
    tag="media",
    body=ImportCreate,
    response=TaskOut,
    status=201,
    errors=(404,),
    description=(
        "The server downloads the URL (size limit `media.import_max_bytes`, timeouts "
        "`media.import_timeout` and `media.import_idle_timeout`), then probes it like an "
        "upload. Private, loopback and link-local targets are refused unless "
        "`media.allow_private_import_targets` is set; a refusal fails the task."
    ),
)
async def import_media(call: Call[ImportCreate, None]) -> TaskOut:
    library = call.request.app[LIBRARY]
    body = call.body
    if (
        body.folder_id is not None
        and await library.store.folders.get(call.env, body.folder_id) is None
    ):
        raise not_found("folder", body.folder_id)
    params = body.model_dump(by_alias=True, exclude_none=True)
    task = await library.store.tasks.create(call.env, IMPORT_TASK, params)
    library.importer.start(task)
    return task_out(task)
