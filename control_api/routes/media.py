"""Media items: list and filter, read, change (name, folder, tags, playback policy),
delete, import a URL, mint playback tokens for private VOD."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from control_api.appkeys import ENDPOINTS, LIBRARY, STORE
from control_api.media_library.importer import IMPORT_TASK
from control_api.media_library.removal import delete_item
from control_api.presenters.media import media_out
from control_api.presenters.tasks import task_out
from control_api.problems import conflict, not_found
from control_api.router import Call
from control_api.routes import api
from control_api.schemas.live_streams import PlaybackToken, PlaybackTokenCreate
from control_api.schemas.media import (
    ImportCreate,
    MediaList,
    MediaOut,
    MediaPatch,
    MediaQuery,
)
from control_api.schemas.tasks import TaskOut
from control_api.store.folders import UnknownFolder
from server.hls import tokens


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
    endpoints = call.request.app[ENDPOINTS]
    return MediaList(media=[media_out(r, endpoints) for r in page.items], total=page.total)


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
    return media_out(row, call.request.app[ENDPOINTS])


@api.route(
    "PATCH",
    "/v1/media/{mediaId}",
    summary="Rename, move (folderId, null for the root), retag a media item or set its "
    "playbackPolicy",
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
    return media_out(row, call.request.app[ENDPOINTS])


@api.route(
    "DELETE",
    "/v1/media/{mediaId}",
    summary="Delete a media item and its file",
    tag="media",
    status=204,
    errors=(404, 409),
)
async def delete_media(call: Call[None, None]) -> None:
    library = call.request.app[LIBRARY]
    media_id = call.path("mediaId")
    channel = await library.store.queue.live_channel_with(call.env, media_id)
    if channel is not None:
        raise conflict(
            f"media item {media_id!r} is queued on live channel "
            f"{channel.name!r} ({channel.id}); remove it from the queue or stop the channel first"
        )
    if await delete_item(library.store, library.files, call.env, media_id) is None:
        raise not_found("media item", media_id)


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


@api.route(
    "POST",
    "/v1/media/{mediaId}/playback-tokens",
    summary="Mint a signed, expiring playback token (for private media items)",
    tag="media",
    body=PlaybackTokenCreate,
    response=PlaybackToken,
    status=201,
    errors=(404,),
    description="Append it as `?token=` to the item's `hlsUrl` or `mp4Url`; it opens "
    "this item only.",
)
async def create_media_playback_token(call: Call[PlaybackTokenCreate, None]) -> PlaybackToken:
    store = call.request.app[STORE]
    row = await store.media.get(call.env, call.path("mediaId"))
    if row is None:
        raise not_found("media item", call.path("mediaId"))
    expires = int(time.time()) + call.body.expires_in_seconds
    key = await store.playback_signing_key()
    return PlaybackToken(
        token=tokens.mint(key, row.id, expires), expires_at=datetime.fromtimestamp(expires, UTC)
    )
