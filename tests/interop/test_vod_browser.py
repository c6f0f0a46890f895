"""The VOD player page in a real headless Chromium: hls.js plays an uploaded file, seeks
to its middle and plays on; a private item plays only with its token."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server.hls.player import hlsjs_path
from tests.api.vod_helpers import H264, SINE, TESTSRC, ffmpeg
from tests.chromium import PLAYER_FLAGS, devtools_page, evaluate, free_port
from tests.conftest import require_program
from tests.interop.conftest import Api, StartRelaycast

pytestmark = [pytest.mark.interop, pytest.mark.serial]

PROBE = (
    "JSON.stringify({t: document.getElementById('video').currentTime,"
    " errors: window.playerErrors || ['no player']})"
)


def _upload(api: Api, path: Path) -> str:
    """One tus creation and one PATCH with the whole file; the media id."""
    data = path.read_bytes()
    name = base64.b64encode(path.name.encode()).decode()
    auth = {"Authorization": f"Bearer {api.key}", "Tus-Resumable": "1.0.0"}
    create = urllib.request.Request(
        api.base + "/v1/uploads",
        method="POST",
        headers={**auth, "Upload-Length": str(len(data)), "Upload-Metadata": f"filename {name}"},
    )
    with urllib.request.urlopen(create, timeout=10) as resp:
        location, media_id = resp.headers["Location"], resp.headers["Relaycast-Media-Id"]
    patch = urllib.request.Request(
        api.base + location,
        data=data,
        method="PATCH",
        headers={**auth, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
    )
    with urllib.request.urlopen(patch, timeout=30) as resp:
        assert resp.status == 204
    return str(media_id)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code


async def _play_and_seek(url: str, profile: Path) -> tuple[list[dict[str, Any]], list[Any]]:
    """Samples of currentTime before and after seeking to 5 s (of 10)."""
    chromium = require_program("chromium")
    port = free_port()
    browser = await asyncio.create_subprocess_exec(
        chromium,
        *PLAYER_FLAGS,
        f"--remote-debugging-port={port}",
        f"--user-data-dir={profile}",
        url,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    before: list[dict[str, Any]] = []
    after: list[dict[str, Any]] = []
    try:
        async with aiohttp.ClientSession() as http:
            socket_url = await devtools_page(http, port)
            async with http.ws_connect(socket_url, max_msg_size=0) as ws:
                ident = 0
                for samples, count in ((before, 8), (after, 8)):
                    if samples is after:
                        ident += 1
                        await evaluate(
                            ws, "document.getElementById('video').currentTime = 5", ident
                        )
                    for _ in range(count):
                        ident += 1
                        samples.append(json.loads(await evaluate(ws, PROBE, ident) or "{}"))
                        await asyncio.sleep(0.5)
    finally:
        browser.kill()
        await browser.wait()
    return before, after


@pytest.fixture
def hlsjs() -> Path:
    path = hlsjs_path()
    if not path.is_file():
        message = "hls.js is not installed (scripts/web.sh installs it from npm)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


async def test_hlsjs_plays_and_seeks_a_private_vod_with_its_token(
    start_relaycast: StartRelaycast, tmp_path: Path, hlsjs: Path
) -> None:
    relaycast = start_relaycast()
    api = relaycast.api
    clip = ffmpeg(tmp_path / "clip.mp4", *TESTSRC, *SINE, *H264, "-c:a", "aac")
    media_id = await asyncio.to_thread(_upload, api, clip)
    for _ in range(200):
        item = api.ok("GET", f"/v1/media/{media_id}")
        if item["status"] == "ready":
            break
        await asyncio.sleep(0.1)
    assert item["status"] == "ready" and item["playbackPolicy"] == "private", item
    hls = item["playback"]["hlsUrl"]
    token = api.ok("POST", f"/v1/media/{media_id}/playback-tokens", {}, status=201)["token"]
    assert await asyncio.to_thread(_status, hls) == 401
    assert await asyncio.to_thread(_status, f"{hls}?token={token}") == 200
    page = f"{relaycast.server.base}/play/vod/{media_id}?token={token}"
    before, after = await _play_and_seek(page, tmp_path / "profile")
    played = [s["t"] for s in before if "t" in s]
    assert played and max(played) >= 1.0, before
    seeked = [s["t"] for s in after if "t" in s]
    assert seeked and min(seeked[1:]) >= 5.0 and max(seeked) >= 6.5, after
    assert after[-1]["errors"] == [], after[-1]
