"""A small tus client for the tests, over the ``Api`` helper, plus raw-socket tricks.

Kept deliberately literal (headers spelled out) so a failing test shows exactly what
went over the wire.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import time
from pathlib import Path
from typing import Any

import pytest
from yarl import URL

from tests.api.conftest import Api, Reply
from tests.api.media_samples import make_clip

TUS = {"Tus-Resumable": "1.0.0"}
STREAM = {"Content-Type": "application/offset+octet-stream"}


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A 2 s 320x180 H.264/AAC mp4, made once per session with PyAV."""
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4").read_bytes()


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def sha1_header(data: bytes) -> str:
    return "sha1 " + base64.b64encode(hashlib.sha1(data).digest()).decode()


async def create(
    api: Api,
    length: int,
    filename: str = "clip.mp4",
    *,
    key: str = "admin",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    **meta: str,
) -> Reply:
    hdrs = {
        **TUS,
        "Upload-Length": str(length),
        "Upload-Metadata": metadata(filename=filename, **meta),
    }
    if body is not None:
        hdrs.update(STREAM)
    hdrs.update(headers or {})
    return await api.call("POST", "/v1/uploads", key=key, raw=body, headers=hdrs)


async def new_upload(api: Api, length: int, filename: str = "clip.mp4", **kw: Any) -> str:
    """Create an upload; return its path (``/v1/uploads/upl_…``)."""
    reply = await create(api, length, filename, **kw)
    assert reply.status == 201, reply.text
    return path_of(reply.headers["Location"])


def path_of(location: str) -> str:
    return URL(location).path


async def patch(
    api: Api,
    path: str,
    offset: int,
    data: bytes,
    *,
    key: str = "admin",
    checksum: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    hdrs = {**TUS, **STREAM, "Upload-Offset": str(offset)}
    if checksum is not None:
        hdrs["Upload-Checksum"] = checksum
    hdrs.update(headers or {})
    return await api.call("PATCH", path, key=key, raw=data, headers=hdrs)


async def head(api: Api, path: str, *, key: str = "admin") -> Reply:
    return await api.call("HEAD", path, key=key, headers=TUS)


async def offset_of(api: Api, path: str, *, key: str = "admin") -> int:
    reply = await head(api, path, key=key)
    assert reply.status == 200, reply.status
    return int(reply.headers["Upload-Offset"])


async def upload(
    api: Api, data: bytes, filename: str = "clip.mp4", *, chunk: int = 64 * 1024, **kw: Any
) -> str:
    """Upload ``data`` in checksummed chunks; return the media id."""
    path = await new_upload(api, len(data), filename, **kw)
    key = kw.get("key", "admin")
    offset = 0
    reply = None
    while offset < len(data):
        piece = data[offset : offset + chunk]
        reply = await patch(api, path, offset, piece, key=key, checksum=sha1_header(piece))
        assert reply.status == 204, reply.text
        offset = int(reply.headers["Upload-Offset"])
    status = await head(api, path, key=key)
    return str(status.headers["Relaycast-Media-Id"])


async def wait_media(
    api: Api, media_id: str, *, key: str = "admin", patience: float = 60.0
) -> dict[str, Any]:
    """Poll until the item leaves uploading/processing (``patience`` only bounds a hang)."""
    deadline = time.monotonic() + patience
    while True:
        reply = await api.call("GET", f"/v1/media/{media_id}", key=key)
        assert reply.status == 200, reply.text
        item: dict[str, Any] = reply.json
        if item["status"] not in ("uploading", "processing"):
            return item
        assert time.monotonic() < deadline, f"media {media_id} still {item['status']}"
        await asyncio.sleep(0.05)


async def resume(api: Api, path: str, data: bytes, *, key: str = "admin") -> Reply:
    """What a tus client does after a failure: ask for the offset, send the rest, and on a
    409 (an earlier request finished storing meanwhile) ask again."""
    for _ in range(10):
        offset = await offset_of(api, path, key=key)
        reply = await patch(api, path, offset, data[offset:], key=key)
        if reply.status != 409:
            return reply
    raise AssertionError("the offset kept moving")


async def raw_patch_start(
    api: Api, path: str, offset: int, declared: int, sent: bytes, *, checksum: str | None = None
) -> asyncio.StreamWriter:
    """Start a PATCH announcing ``declared`` bytes, send only ``sent``, keep the socket open."""
    url = URL(api.base)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    lines = [
        f"PATCH {path} HTTP/1.1",
        f"Host: {url.host}:{url.port}",
        f"Authorization: Bearer {api.admin_key}",
        "Tus-Resumable: 1.0.0",
        "Content-Type: application/offset+octet-stream",
        f"Upload-Offset: {offset}",
        f"Content-Length: {declared}",
    ]
    if checksum is not None:
        lines.append(f"Upload-Checksum: {checksum}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + sent)
    await writer.drain()
    writer.reader = reader  # type: ignore[attr-defined]
    return writer


async def drop(writer: asyncio.StreamWriter) -> None:
    """The client vanishes mid-body."""
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


def media_file(api: Api, environment_id: str, media_id: str) -> Path:
    return Path(api.settings.server.data_dir) / "media" / environment_id / media_id
