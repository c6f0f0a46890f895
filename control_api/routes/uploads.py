"""tus 1.0 resumable uploads at ``/v1/uploads`` (plain aiohttp routes, not JSON operations).

Creation (``POST``, optionally with the first bytes), ``HEAD`` for the offset,
``PATCH`` to append, ``DELETE`` to terminate, ``OPTIONS`` for discovery, and ``POST``
with ``X-HTTP-Method-Override`` for clients that cannot send PATCH or DELETE.

The access middleware authenticates these like every /v1 path and scopes them to the
key's environment; restricted keys may use them (the contract lets them create
uploads, and an upload is useless without its PATCHes). Every refusal is
problem+json carrying ``Tus-Resumable``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from control_api.appkeys import LIBRARY
from control_api.media_library import tus
from control_api.media_library.gates import UploadBusy
from control_api.media_library.tus import MEDIA_ID_HEADER, OFFSET_STREAM, TusProblem
from control_api.principal import PRINCIPAL
from control_api.store.models import Upload
from control_api.store.uploads import NewUpload

COLLECTION = "/v1/uploads"
ITEM = "/v1/uploads/{uploadId}"


def _env(request: web.Request) -> str:
    return request[PRINCIPAL].environment_id


def _headers(row: Upload, offset: int) -> dict[str, str]:
    headers = {
        **tus.RESUMABLE,
        "Upload-Offset": str(offset),
        "Upload-Length": str(row.length),
        MEDIA_ID_HEADER: row.media_id,
        "Cache-Control": "no-store",
    }
    if row.completed_at is None:
        headers["Upload-Expires"] = tus.http_date(row.expires_at)
    return headers


async def _upload(request: web.Request) -> Upload:
    upload_id = request.match_info["uploadId"]
    row = await request.app[LIBRARY].store.uploads.get(_env(request), upload_id)
    if row is None:
        raise TusProblem(
            404, f"upload {upload_id!r} does not exist in this environment (or expired)"
        )
    return row


async def _append(
    request: web.Request, row: Upload | None, offset: int, checksum: tus.Checksum | None
) -> Upload:
    """Append the body under the upload's gate. Without ``row`` the upload is looked up
    once the gate is ours, so an earlier request's progress is seen."""
    library = request.app[LIBRARY]
    upload_id = row.id if row is not None else request.match_info["uploadId"]
    try:
        async with library.gates.hold(
            upload_id, request.transport, library.settings.upload_lock_wait
        ):
            current = row if row is not None else await _upload(request)
            return await library.uploads.append(
                current, request.content, offset, checksum, request.content_length
            )
    except UploadBusy:
        raise TusProblem(
            423, "another request is still writing this upload; retry shortly"
        ) from None


async def discover(request: web.Request) -> web.Response:
    """OPTIONS: the tus version, extensions, checksum algorithms and maximum size."""
    max_size = request.app[LIBRARY].settings.max_upload_bytes
    return web.Response(status=204, headers=tus.discovery_headers(max_size))


async def create_upload(request: web.Request) -> web.Response:
    """POST: a new upload (``Upload-Length``, ``Upload-Metadata``), maybe with its first
    bytes; answers with its ``Location`` and the media id it will become."""
    library = request.app[LIBRARY]
    tus.require_version(request.headers)
    length = tus.upload_length(request.headers, library.settings.max_upload_bytes)
    raw_metadata = request.headers.get("Upload-Metadata", "")
    metadata = tus.parse_metadata(raw_metadata)
    name = tus.filename(metadata)
    folder = metadata.get("folderId") or None
    if folder is not None and await library.store.folders.get(_env(request), folder) is None:
        raise TusProblem(404, f"folder {folder!r} does not exist in this environment")
    checksum = None
    if request.body_exists:
        if request.content_type != OFFSET_STREAM:
            raise TusProblem(415, f"send the upload's first bytes as {OFFSET_STREAM}")
        checksum = tus.upload_checksum(request.headers)
        if request.content_length is not None and request.content_length > length:
            raise TusProblem(413, f"the body is longer than the Upload-Length of {length}")
    row = await library.uploads.create(_env(request), NewUpload(length, raw_metadata, name, folder))
    location = {"Location": f"{COLLECTION}/{row.id}"}
    if request.body_exists:
        try:
            row = await _append(request, row, 0, checksum)
        except TusProblem as problem:
            problem.headers.update(location)  # the upload exists: let the client resume it
            raise
    return web.Response(status=201, headers={**_headers(row, row.received), **location})


async def upload_status(request: web.Request) -> web.Response:
    """HEAD: how many bytes are stored (resume from there)."""
    tus.require_version(request.headers)
    row = await _upload(request)
    offset = await request.app[LIBRARY].uploads.offset(row)
    return web.Response(
        status=200, headers={**_headers(row, offset), "Upload-Metadata": row.metadata_header}
    )


async def append_upload(request: web.Request) -> web.Response:
    """PATCH: bytes at ``Upload-Offset``; answers with the new offset, already on disk."""
    tus.require_version(request.headers)
    if request.content_type != OFFSET_STREAM:
        raise TusProblem(415, f"send PATCH bodies as {OFFSET_STREAM}")
    offset = tus.upload_offset(request.headers)
    checksum = tus.upload_checksum(request.headers)
    row = await _append(request, None, offset, checksum)
    return web.Response(status=204, headers=_headers(row, row.received))


async def terminate_upload(request: web.Request) -> web.Response:
    """DELETE: stop and forget the upload (an unfinished one's bytes are deleted)."""
    library = request.app[LIBRARY]
    tus.require_version(request.headers)
    row = await _upload(request)
    try:
        async with library.gates.hold(row.id, request.transport, library.settings.upload_lock_wait):
            await library.uploads.terminate(row)
    except UploadBusy:
        raise TusProblem(
            423, "another request is still writing this upload; retry shortly"
        ) from None
    return web.Response(status=204, headers=tus.RESUMABLE)


_OVERRIDES: dict[str, Callable[[web.Request], Awaitable[web.Response]]] = {
    "PATCH": append_upload,
    "DELETE": terminate_upload,
    "HEAD": upload_status,
}


async def method_override(request: web.Request) -> web.Response:
    """POST with X-HTTP-Method-Override, for environments that cannot send PATCH/DELETE."""
    method = request.headers.get("X-HTTP-Method-Override", "").upper()
    handler = _OVERRIDES.get(method)
    if handler is None:
        raise TusProblem(
            405,
            "POST to an upload needs X-HTTP-Method-Override: PATCH, DELETE or HEAD",
            headers={"Allow": "HEAD, PATCH, DELETE, OPTIONS"},
        )
    return await handler(request)


def mount(app: web.Application) -> None:
    app.router.add_route("OPTIONS", COLLECTION, discover)
    app.router.add_route("POST", COLLECTION, create_upload)
    app.router.add_route("OPTIONS", ITEM, discover)
    app.router.add_route("HEAD", ITEM, upload_status)
    app.router.add_route("PATCH", ITEM, append_upload)
    app.router.add_route("DELETE", ITEM, terminate_upload)
    app.router.add_route("POST", ITEM, method_override)
