"""tus uploads against a real server: the protocol, interruptions, errors, probing, scoping."""

from __future__ import annotations

import asyncio
import hashlib
import os
from datetime import UTC, datetime, timedelta

import pytest

from control_api.media_library.files import MediaFiles
from control_api.media_library.gates import UploadGates
from control_api.media_library.janitor import sweep_expired
from tests.api.conftest import Api, ApiFactory
from tests.api.tus_helpers import (
    STREAM,
    TUS,
    clip,
    create,
    drop,
    head,
    media_file,
    metadata,
    new_upload,
    offset_of,
    patch,
    raw_patch_start,
    resume,
    sha1_header,
    upload,
    wait_media,
)

__all__ = ["clip"]
ORIGIN = "https://uploader.example"


async def default_env(api: Api) -> str:
    env = await api.store.environments.get_by_name("default")
    assert env is not None
    return env.id


async def test_options_advertises_protocol_extensions_and_max_size(make_api: ApiFactory) -> None:
    api = await make_api(media={"max_upload_bytes": 12345})
    reply = await api.call("OPTIONS", "/v1/uploads")
    assert reply.status == 204
    assert reply.headers["Tus-Version"] == "1.0.0"
    assert reply.headers["Tus-Max-Size"] == "12345"
    extensions = reply.headers["Tus-Extension"].split(",")
    for ext in ("creation", "creation-with-upload", "termination", "checksum", "expiration"):
        assert ext in extensions
    assert "sha1" in reply.headers["Tus-Checksum-Algorithm"].split(",")
    assert (await api.call("OPTIONS", "/v1/uploads", key=None)).status == 401


async def test_chunked_upload_becomes_a_probed_media_item(api: Api, clip: bytes) -> None:
    created = await create(api, len(clip), "holiday.mp4")
    assert created.status == 201
    location = created.headers["Location"]
    assert location.startswith("/v1/uploads/upl_")  # root-relative: right behind any proxy
    media_id = created.headers["Relaycast-Media-Id"]
    assert created.headers["Upload-Offset"] == "0" and "Upload-Expires" in created.headers
    assert (await api.call("GET", f"/v1/media/{media_id}")).status == 404  # not until complete
    third = len(clip) // 3 + 1
    for offset in range(0, len(clip), third):
        piece = clip[offset : offset + third]
        reply = await patch(api, location, offset, piece, checksum=sha1_header(piece))
        assert reply.status == 204, reply.text
        assert reply.headers["Upload-Offset"] == str(min(offset + third, len(clip)))
        assert reply.headers["Tus-Resumable"] == "1.0.0"
    status = await head(api, location)
    assert status.headers["Upload-Offset"] == status.headers["Upload-Length"] == str(len(clip))
    assert status.headers["Upload-Metadata"] == metadata(filename="holiday.mp4")
    item = await wait_media(api, media_id)
    assert item["status"] == "ready", item
    assert item["name"] == "holiday.mp4" and item["sizeBytes"] == len(clip)
    assert item["source"] == "upload" and item["container"] == "mp4"
    assert 1.9 <= item["durationSeconds"] <= 2.2
    assert item["video"] == {"codec": "h264", "width": 320, "height": 180, "fps": 25.0}
    assert item["audio"] == {"codec": "aac", "sampleRate": 48000, "channels": 2}
    stored = media_file(api, await default_env(api), media_id)
    assert hashlib.sha256(stored.read_bytes()).digest() == hashlib.sha256(clip).digest()


async def test_creation_with_upload_and_empty_uploads(api: Api, clip: bytes) -> None:
    first = clip[:50_000]
    reply = await create(
        api, len(clip), body=first, headers={"Upload-Checksum": sha1_header(first)}
    )
    assert reply.status == 201 and reply.headers["Upload-Offset"] == str(len(first))
    rest = await patch(api, reply.headers["Location"], len(first), clip[len(first) :])
    assert rest.status == 204
    assert (await wait_media(api, reply.headers["Relaycast-Media-Id"]))["status"] == "ready"
    empty = await create(api, 0, "empty.mp4")
    assert empty.status == 201 and empty.headers["Upload-Offset"] == "0"
    item = await wait_media(api, empty.headers["Relaycast-Media-Id"])
    assert item["status"] == "error" and item["sizeBytes"] == 0


async def test_client_drop_mid_patch_keeps_what_arrived_and_resumes(api: Api, clip: bytes) -> None:
    """What the server had read when the connection died is kept (bytes still in aiohttp's
    receive buffer at that moment are not); the client resumes from what HEAD reports."""
    env = await default_env(api)
    path = await new_upload(api, len(clip))
    sent = clip[:200_000]
    writer = await raw_patch_start(api, path, 0, len(clip), sent)
    await asyncio.sleep(0.3)  # give the server a chance to read; correctness does not need it
    await drop(writer)
    reply = await resume(api, path, clip)
    assert reply.status == 204, reply.text
    assert reply.headers["Upload-Offset"] == str(len(clip))
    item = await wait_media(api, reply.headers["Relaycast-Media-Id"])
    assert item["status"] == "ready"
    assert media_file(api, env, item["mediaId"]).read_bytes() == clip


async def test_client_drop_with_a_checksum_keeps_nothing_of_that_request(
    api: Api, clip: bytes
) -> None:
    path = await new_upload(api, len(clip))
    assert (await patch(api, path, 0, clip[:1000])).status == 204
    body = clip[1000:200_000]
    writer = await raw_patch_start(
        api, path, 1000, len(body), body[:50_000], checksum=sha1_header(body)
    )
    await drop(writer)
    # the server cannot vouch for a partial body against a whole-body digest: it is cut off,
    # and a resumed PATCH at the old offset is accepted (so the offset never moved)
    reply = await patch(api, path, 1000, clip[1000:], checksum=sha1_header(clip[1000:]))
    assert reply.status == 204, reply.text
    assert (await wait_media(api, reply.headers["Relaycast-Media-Id"]))["status"] == "ready"


async def test_a_newcomer_takes_over_from_a_stalled_patch(api: Api, clip: bytes) -> None:
    path = await new_upload(api, len(clip))
    stalled = await raw_patch_start(api, path, 0, len(clip), clip[:70_000])
    await asyncio.sleep(0.2)  # let the server read what was sent (no timing is asserted)
    # the client, believing the connection dead, resumes from the last offset it knew
    retry = await patch(api, path, 0, clip)
    kept = int(retry.headers["Upload-Offset"])
    if retry.status == 409:  # the stalled request's bytes were kept: continue from there
        assert 0 < kept <= 70_000 and await offset_of(api, path) == kept
        retry = await patch(api, path, kept, clip[kept:])
    assert retry.status == 204, retry.text
    await drop(stalled)
    item = await wait_media(api, retry.headers["Relaycast-Media-Id"])
    assert media_file(api, await default_env(api), item["mediaId"]).read_bytes() == clip


async def test_every_error_code_leaves_received_data_intact(
    make_api: ApiFactory, clip: bytes
) -> None:
    api = await make_api(media={"max_upload_bytes": len(clip)})
    path = await new_upload(api, len(clip))
    assert (await patch(api, path, 0, clip[:1000])).status == 204

    wrong_offset = await patch(api, path, 500, clip[500:2000])
    assert wrong_offset.status == 409 and wrong_offset.headers["Upload-Offset"] == "1000"

    mismatch = await patch(api, path, 1000, clip[1000:2000], checksum=sha1_header(b"other"))
    assert mismatch.status == 460 and mismatch.json["status"] == 460
    assert mismatch.json["title"] == "Checksum Mismatch"

    past_length = await patch(api, path, 1000, clip[1000:] + b"extra")
    assert past_length.status == 413

    too_big = await create(api, len(clip) + 1)
    assert too_big.status == 413 and too_big.headers["Tus-Max-Size"] == str(len(clip))

    unknown = await patch(api, "/v1/uploads/upl_missing", 0, b"x")
    assert unknown.status == 404 and unknown.json["status"] == 404
    assert (await head(api, "/v1/uploads/upl_missing")).status == 404

    for reply in (wrong_offset, mismatch, past_length, too_big, unknown):
        assert reply.headers["Content-Type"].startswith("application/problem+json")
        assert reply.headers["Tus-Resumable"] == "1.0.0"
        assert {"type", "title", "status", "detail"} <= set(reply.json)

    assert await offset_of(api, path) == 1000
    done = await patch(api, path, 1000, clip[1000:], checksum=sha1_header(clip[1000:]))
    assert done.status == 204
    item = await wait_media(api, done.headers["Relaycast-Media-Id"])
    assert media_file(api, await default_env(api), item["mediaId"]).read_bytes() == clip


async def test_streamed_body_past_the_length_is_refused_without_content_length(
    api: Api, clip: bytes
) -> None:
    path = await new_upload(api, 1000)

    async def body() -> object:
        for _ in range(4):
            yield clip[:400]

    reply = await api.call(
        "PATCH",
        path,
        raw=body(),  # type: ignore[arg-type]
        headers={**TUS, **STREAM, "Upload-Offset": "0"},
    )
    assert reply.status == 413
    assert await offset_of(api, path) == 0


@pytest.mark.parametrize(
    ("headers", "status", "field"),
    [
        ({"Tus-Resumable": "0.2.2"}, 412, None),
        ({"Upload-Length": "-1"}, 400, None),
        ({"Upload-Length": "ten"}, 400, None),
        ({"Upload-Metadata": "filename !!!notbase64"}, 400, None),
        ({"Upload-Metadata": metadata(name="x")}, 422, "Upload-Metadata.filename"),
        ({"Upload-Defer-Length": "1"}, 400, None),
        ({"Upload-Metadata": metadata(filename="a", folderId="fld_missing")}, 404, None),
    ],
)
async def test_bad_creation_requests(
    api: Api, headers: dict[str, str], status: int, field: str | None
) -> None:
    base = {**TUS, "Upload-Length": "10", "Upload-Metadata": metadata(filename="a.mp4")}
    reply = await api.call("POST", "/v1/uploads", headers={**base, **headers})
    assert reply.status == status, reply.text
    assert reply.json["status"] == status
    if field:
        assert reply.json["errors"][0]["field"] == field
    if status == 412:
        assert reply.headers["Tus-Version"] == "1.0.0"


async def test_bad_patch_requests(api: Api) -> None:
    path = await new_upload(api, 10)
    cases = [
        ({"Content-Type": "application/json"}, 415),
        ({"Upload-Offset": "x"}, 400),
        ({"Upload-Checksum": "crc32 AAAA"}, 400),
        ({"Upload-Checksum": "sha1 not-base64!"}, 400),
        ({"Tus-Resumable": "2.0.0"}, 412),
    ]
    for headers, status in cases:
        reply = await api.call(
            "PATCH", path, raw=b"12345", headers={**TUS, **STREAM, "Upload-Offset": "0", **headers}
        )
        assert reply.status == status, (headers, reply.text)
    assert await offset_of(api, path) == 0


async def test_termination_removes_the_upload_and_its_bytes(api: Api, clip: bytes) -> None:
    created = await create(api, len(clip))
    path = created.headers["Location"]
    assert (await patch(api, path, 0, clip[:5000])).status == 204
    file = media_file(api, await default_env(api), created.headers["Relaycast-Media-Id"])
    assert file.stat().st_size == 5000
    reply = await api.call("DELETE", path, headers=TUS)
    assert reply.status == 204 and reply.headers["Tus-Resumable"] == "1.0.0"
    assert not file.exists()
    assert (await head(api, path)).status == 404
    assert (await api.call("DELETE", path, headers=TUS)).status == 404


async def test_method_override_for_clients_without_patch(api: Api) -> None:
    path = await new_upload(api, 5, "a.bin")
    reply = await api.call(
        "POST",
        path,
        raw=b"12345",
        headers={**TUS, **STREAM, "Upload-Offset": "0", "X-HTTP-Method-Override": "PATCH"},
    )
    assert reply.status == 204 and reply.headers["Upload-Offset"] == "5"
    assert (await api.call("POST", path, headers=TUS)).status == 405


async def test_expired_uploads_are_swept(api: Api) -> None:
    created = await create(api, 100, "a.bin")
    path = created.headers["Location"]
    assert (await patch(api, path, 0, b"x" * 10)).status == 204
    file = media_file(api, await default_env(api), created.headers["Relaycast-Media-Id"])
    files = MediaFiles(api.settings.server.data_dir)
    assert await sweep_expired(api.store, files, UploadGates()) == 0  # nothing is due yet
    later = datetime.now(UTC) + timedelta(hours=api.settings.media.upload_expiry_hours, minutes=1)
    assert await sweep_expired(api.store, files, UploadGates(), later) == 1
    assert not file.exists()
    assert (await head(api, path)).status == 404


async def test_a_non_media_file_ends_in_error_and_is_kept_until_deleted(api: Api) -> None:
    text = b"this is a shopping list, not a video\n" * 200
    media_id = await upload(api, text, "notes.mp4")
    item = await wait_media(api, media_id)
    assert item["status"] == "error"
    assert "audio or video" in item["error"]
    assert "video" not in item and "durationSeconds" not in item
    file = media_file(api, await default_env(api), media_id)
    assert file.read_bytes() == text  # kept for inspection
    assert (await api.call("DELETE", f"/v1/media/{media_id}")).status == 204
    assert not file.exists()
    assert (await api.call("GET", f"/v1/media/{media_id}")).status == 404


async def test_concurrent_uploads(api: Api, clip: bytes) -> None:
    payloads = [os.urandom(300_000) for _ in range(4)] + [clip]
    names = [f"file{i}.bin" for i in range(4)] + ["clip.mp4"]
    ids = await asyncio.gather(
        *(upload(api, data, name, chunk=50_000) for data, name in zip(payloads, names, strict=True))
    )
    assert len(set(ids)) == len(ids)
    env = await default_env(api)
    for media_id, data in zip(ids, payloads, strict=True):
        assert media_file(api, env, media_id).read_bytes() == data
    items = [await wait_media(api, m) for m in ids]
    assert [i["status"] for i in items][-1] == "ready"


async def test_uploads_are_scoped_to_the_environment(api: Api, clip: bytes) -> None:
    created = await create(api, len(clip))
    path = created.headers["Location"]
    other = await api.new_key(env="staging")
    assert (await head(api, path, key=other)).status == 404
    assert (await patch(api, path, 0, clip, key=other)).status == 404
    assert (await api.call("DELETE", path, key=other, headers=TUS)).status == 404
    assert (await patch(api, path, 0, clip)).status == 204
    media_id = created.headers["Relaycast-Media-Id"]
    await wait_media(api, media_id)
    assert (await api.call("GET", f"/v1/media/{media_id}", key=other)).status == 404
    assert (await api.call("GET", "/v1/media", key=other)).json == {"media": [], "total": 0}
    foreign_folder = await api.call("POST", "/v1/folders", body={"name": "mine"})
    folder_id = foreign_folder.json["folderId"]
    moved = await create(api, 5, "a.bin", key=other, folderId=folder_id)
    assert moved.status == 404  # another environment's folder does not exist for this key


async def test_restricted_key_uploads_from_a_browser_origin(api: Api, clip: bytes) -> None:
    key = await api.new_key("restricted", corsOrigins=[ORIGIN])
    preflight = await api.call(
        "OPTIONS",
        "/v1/uploads/upl_x",
        key=None,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization,tus-resumable,upload-offset,"
            "upload-checksum,content-type",
        },
    )
    assert preflight.status == 204 and preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
    assert "upload-offset" in allowed and "tus-resumable" in allowed
    created = await create(api, len(clip), key=key, headers={"Origin": ORIGIN})
    assert created.status == 201
    assert created.headers["Access-Control-Allow-Origin"] == ORIGIN
    exposed = created.headers["Access-Control-Expose-Headers"]
    for name in ("Location", "Upload-Offset", "Relaycast-Media-Id"):
        assert name in exposed
    done = await patch(
        api, created.headers["Location"], 0, clip, key=key, headers={"Origin": ORIGIN}
    )
    assert done.status == 204 and done.headers["Access-Control-Allow-Origin"] == ORIGIN
    media_id = done.headers["Relaycast-Media-Id"]
    assert (await wait_media(api, media_id, key=key))["status"] == "ready"
    renamed = await api.call("PATCH", f"/v1/media/{media_id}", key=key, body={"name": "b"})
    assert renamed.status == 200 and renamed.json["name"] == "b"
    assert (await api.call("GET", "/v1/tasks/tsk_x", key=key)).status == 404
    for method, path in [
        ("GET", "/v1/media"),
        ("DELETE", f"/v1/media/{media_id}"),
        ("POST", "/v1/media/import"),
        ("GET", "/v1/folders"),
        ("GET", "/v1/tags"),
    ]:
        assert (await api.call(method, path, key=key)).status == 403, (method, path)


async def test_upload_into_a_folder(api: Api) -> None:
    folder = (await api.call("POST", "/v1/folders", body={"name": "inbox"})).json["folderId"]
    media_id = await upload(api, b"abc", "a.bin", folderId=folder)
    item = await wait_media(api, media_id)
    assert item["folderId"] == folder
    listed = await api.call("GET", f"/v1/media?folderId={folder}")
    assert [m["mediaId"] for m in listed.json["media"]] == [media_id]


async def test_a_stalled_body_is_kept_and_answered_408(make_api: ApiFactory, clip: bytes) -> None:
    api = await make_api(media={"upload_idle_timeout": 0.3})
    path = await new_upload(api, len(clip))
    writer = await raw_patch_start(api, path, 0, len(clip), clip[:30_000])
    reader: asyncio.StreamReader = writer.reader  # type: ignore[attr-defined]
    status_line = await asyncio.wait_for(reader.readline(), 30)
    assert b" 408 " in status_line
    await drop(writer)
    assert await offset_of(api, path) == 30_000
