"""The VOD player page in a real headless Chromium: hls.js plays an uploaded file, seeks
to its middle and plays on; a private item plays only with its token."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.api.vod_helpers import H264, SINE, TESTSRC, ffmpeg
from tests.chromium import async_browser
from tests.interop.conftest import StartRelaycast
from tests.interop.uploads import tus_upload

pytestmark = [pytest.mark.interop, pytest.mark.serial]

PROBE = (
    "JSON.stringify({t: document.getElementById('video').currentTime,"
    " errors: window.playerErrors || ['no player']})"
)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code


async def _play_and_seek(url: str) -> tuple[list[dict[str, Any]], list[Any]]:
    """Samples of currentTime before and after seeking to 5 s (of 10)."""
    before: list[dict[str, Any]] = []
    after: list[dict[str, Any]] = []
    async with async_browser() as browser:
        page = await browser.new_page()
        await page.goto(url)
        for samples, count in ((before, 8), (after, 8)):
            if samples is after:
                await page.evaluate("document.getElementById('video').currentTime = 5")
            for _ in range(count):
                samples.append(json.loads(await page.evaluate(PROBE) or "{}"))
                await asyncio.sleep(0.5)
    return before, after


async def test_hlsjs_plays_and_seeks_a_private_vod_with_its_token(
    start_relaycast: StartRelaycast, tmp_path: Path, hlsjs: Path
) -> None:
    relaycast = start_relaycast()
    api = relaycast.api
    clip = ffmpeg(tmp_path / "clip.mp4", *TESTSRC, *SINE, *H264, "-c:a", "aac")
    media_id = await asyncio.to_thread(tus_upload, api, clip)
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
    before, after = await _play_and_seek(page)
    played = [s["t"] for s in before if "t" in s]
    assert played and max(played) >= 1.0, before
    seeked = [s["t"] for s in after if "t" in s]
    assert seeked and min(seeked[1:]) >= 5.0 and max(seeked) >= 6.5, after
    assert after[-1]["errors"] == [], after[-1]
