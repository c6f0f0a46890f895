"""URL imports from a local HTTP server: progress, probing, limits, and refused targets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from control_api.media_library.files import MediaFiles
from control_api.media_library.library import MediaLibrary
from control_api.store.models import Media
from control_api.store.uploads import NewUpload, media_path
from control_api.urls import Endpoints
from tests.api.conftest import Api, ApiFactory
from tests.api.tus_helpers import clip, wait_media

__all__ = ["clip"]
PRIVATE_OK = {"media": {"allow_private_import_targets": True}}


@dataclass
class Origin:
    """A file server on 127.0.0.1 whose /gated response waits for the test halfway."""

    base: str = ""
    release: asyncio.Event = field(default_factory=asyncio.Event)
    halfway: asyncio.Event = field(default_factory=asyncio.Event)


def _origin_app(origin: Origin, clip: bytes, redirect_to: str) -> web.Application:
    async def gated(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        response.content_length = len(clip)
        await response.prepare(request)
        half = len(clip) // 2
        await response.write(clip[:half])
        origin.halfway.set()
        await origin.release.wait()
        await response.write(clip[half:])
        return response

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(1000):
            await response.write(b"\0" * 65536)
        return response

    async def silent(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = 100
        await response.prepare(request)
        await origin.release.wait()  # set at teardown
        return response

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(redirect_to)

    def serve(data: bytes) -> Any:
        async def handler(request: web.Request) -> web.Response:
            return web.Response(body=data)

        return handler

    async def to_clip(request: web.Request) -> web.Response:
        raise web.HTTPFound("/clip.mp4")

    app = web.Application()
    app.router.add_get("/clip.mp4", serve(clip))
    app.router.add_get("/gated.mp4", gated)
    app.router.add_get("/notes.txt", serve(b"just text\n" * 100))
    app.router.add_get("/big", serve(b"x" * 5000))
    app.router.add_get("/endless", endless)
    app.router.add_get("/silent", silent)
    app.router.add_get("/to-clip", to_clip)
    app.router.add_get("/to-metadata", redirect)
    return app


@pytest.fixture
async def origin(clip: bytes) -> AsyncIterator[Origin]:
    found = Origin()
    runner = web.AppRunner(_origin_app(found, clip, "http://169.254.169.254/latest/meta-data/"))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    found.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield found
    found.release.set()
    await runner.cleanup()


async def start_import(api: Api, url: str, **extra: Any) -> dict[str, Any]:
    reply = await api.call("POST", "/v1/media/import", body={"url": url, **extra})
    assert reply.status == 201, reply.text
    task: dict[str, Any] = reply.json
    assert task["taskId"].startswith("tsk_") and task["type"] == "media.import"
    return task


async def task(api: Api, task_id: str) -> dict[str, Any]:
    reply = await api.call("GET", f"/v1/tasks/{task_id}")
    assert reply.status == 200, reply.text
    return dict(reply.json)


async def finished(api: Api, task_id: str, patience: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + patience
    while True:
        found = await task(api, task_id)
        if found["status"] in ("done", "failed"):
            return found
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.05)


async def test_import_reports_progress_from_0_to_1_then_probes(
    make_api: ApiFactory, origin: Origin
) -> None:
    api = await make_api(**PRIVATE_OK)
    folder = (await api.call("POST", "/v1/folders", body={"name": "imports"})).json["folderId"]
    started = await start_import(api, f"{origin.base}/gated.mp4", name="Gated", folderId=folder)
    assert started["progress"] == 0 and started["status"] == "pending"
    await asyncio.wait_for(origin.halfway.wait(), 30)
    seen = [0.0]
    deadline = time.monotonic() + 30
    while not 0 < seen[-1] < 1:  # the origin holds back the second half until we saw this
        current = await task(api, started["taskId"])
        assert current["status"] == "running", current
        seen.append(current["progress"])
        assert time.monotonic() < deadline, seen
        await asyncio.sleep(0.05)
    media_id = current["result"]["mediaId"]
    assert (await api.call("GET", f"/v1/media/{media_id}")).json["status"] == "uploading"
    origin.release.set()
    done = await finished(api, started["taskId"])
    assert done["status"] == "done" and done["progress"] == 1.0, done
    assert "error" not in done
    seen.append(done["progress"])
    assert seen == sorted(seen)
    item = await wait_media(api, media_id)
    assert item["status"] == "ready" and item["source"] == "import"
    assert item["name"] == "Gated" and item["folderId"] == folder
    assert item["video"]["codec"] == "h264" and item["audio"]["codec"] == "aac"


async def test_import_follows_redirects_and_names_the_item(
    make_api: ApiFactory, origin: Origin
) -> None:
    api = await make_api(**PRIVATE_OK)
    done = await finished(api, (await start_import(api, f"{origin.base}/to-clip"))["taskId"])
    assert done["status"] == "done", done
    item = (await api.call("GET", f"/v1/media/{done['result']['mediaId']}")).json
    assert item["name"] == "to-clip" and item["status"] == "ready"


async def test_an_imported_non_media_file_is_kept_in_error(
    make_api: ApiFactory, origin: Origin
) -> None:
    api = await make_api(**PRIVATE_OK)
    done = await finished(api, (await start_import(api, f"{origin.base}/notes.txt"))["taskId"])
    assert done["status"] == "failed" and "audio or video" in done["error"]
    item = (await api.call("GET", f"/v1/media/{done['result']['mediaId']}")).json
    assert item["status"] == "error" and item["name"] == "notes.txt"


@pytest.mark.parametrize(
    ("path", "settings", "reason"),
    [
        ("/big", {"import_max_bytes": 1000}, "over the import limit"),
        ("/endless", {"import_max_bytes": 1_000_000}, "passed the import limit"),
        ("/silent", {"import_idle_timeout": 0.3}, "timed out"),
        ("/missing", {}, "HTTP 404"),
        ("/to-metadata", {}, "link-local"),
    ],
)
async def test_failed_imports_leave_nothing_behind(
    make_api: ApiFactory, origin: Origin, path: str, settings: dict[str, Any], reason: str
) -> None:
    api = await make_api(media={"allow_private_import_targets": True, **settings})
    done = await finished(api, (await start_import(api, origin.base + path))["taskId"])
    assert done["status"] == "failed" and reason in done["error"], done
    assert "result" not in done
    assert (await api.call("GET", "/v1/media")).json["total"] == 0


async def test_private_targets_are_refused_by_default(api: Api, origin: Origin) -> None:
    for url in (f"{origin.base}/clip.mp4", origin.base.replace("127.0.0.1", "localhost") + "/x"):
        done = await finished(api, (await start_import(api, url))["taskId"])
        assert done["status"] == "failed", done
        assert "private or local address" in done["error"]
        assert "allow_private_import_targets" in done["error"]
    assert (await api.call("GET", "/v1/media")).json["total"] == 0


async def test_some_targets_are_refused_even_when_private_ones_are_allowed(
    make_api: ApiFactory,
) -> None:
    api = await make_api(**PRIVATE_OK)
    own = api.base + "/v1/media"  # the admin API itself, on loopback
    for url, reason in [
        (own, "this server's own HTTP port"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fe80::1]/x", "link-local"),
        ("http://[::ffff:169.254.169.254]/x", "link-local"),
        ("http://224.0.0.1/x", "multicast"),
    ]:
        done = await finished(api, (await start_import(api, url))["taskId"])
        assert done["status"] == "failed" and reason in done["error"], (url, done)


async def test_import_requests_are_validated(api: Api) -> None:
    for body in (
        {"url": "ftp://example.com/a.mp4"},
        {"url": "file:///etc/passwd"},
        {"url": "http://"},
        {"name": "x"},
        {"url": "https://example.com/a.mp4", "extra": 1},
    ):
        reply = await api.call("POST", "/v1/media/import", body=body)
        assert reply.status == 422, (body, reply.text)
    unknown = await api.call(
        "POST", "/v1/media/import", body={"url": "https://example.com/a", "folderId": "fld_x"}
    )
    assert unknown.status == 404
    assert (await api.call("GET", "/v1/tasks/tsk_missing")).status == 404
    other = await api.new_key(env="staging")
    started = await start_import(api, "http://127.0.0.1:9/x")
    assert (await api.call("GET", f"/v1/tasks/{started['taskId']}", key=other)).status == 404


async def test_work_left_by_a_previous_process_is_settled_at_start(
    make_api: ApiFactory, clip: bytes
) -> None:
    """Imports cannot resume (their connection died with the process): the task fails and
    the partial item goes. Items left in processing are probed again."""
    first = await make_api()
    env = await first.store.environments.get_by_name("default")
    assert env is not None
    store = first.store
    stale = await store.tasks.create(env.id, "media.import", {"url": "https://example.com/a"})
    await store.tasks.update(stale.id, status="running", result={"mediaId": "med_partial"})
    probing = await store.tasks.create(env.id, "media.import", {"url": "https://example.com/b"})
    await store.tasks.update(probing.id, status="running", result={"mediaId": "med_probing"})
    upload = await store.uploads.create(
        env.id, NewUpload(len(clip), "", "left.mp4", None), timedelta(hours=1)
    )
    pending = await store.uploads.complete(upload)
    path = MediaFiles(first.settings.server.data_dir).path(pending.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(clip)
    await store.media.add(
        Media(
            id="med_partial",
            environment_id=env.id,
            name="partial",
            status="uploading",
            source="import",
            filename="a",
            path=media_path(env.id, "med_partial"),
            size_bytes=0,
            created_at=datetime.now(UTC),
            tags=[],
        )
    )
    await store.media.add(
        Media(
            id="med_probing",
            environment_id=env.id,
            name="downloaded, not yet probed",
            status="processing",
            source="import",
            filename="b",
            path=media_path(env.id, "med_probing"),
            size_bytes=0,
            created_at=datetime.now(UTC),
            tags=[],
        )
    )
    # what a restarted process does first: the library starts over the same store
    library = MediaLibrary(first.settings, store, Endpoints("127.0.0.1", 1, 1, 1))
    await library.start()
    try:
        await library.processor.idle()
    finally:
        await library.stop()
    settled = await task(first, stale.id)
    assert settled["status"] == "failed" and "restart" in settled["error"]
    for media_id in ("med_partial", "med_probing"):  # the interrupted imports leave nothing
        assert (await first.call("GET", f"/v1/media/{media_id}")).status == 404
    assert (await task(first, probing.id))["status"] == "failed"
    assert (await wait_media(first, pending.id))["status"] == "ready"
