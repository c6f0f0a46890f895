"""The /play page in a real headless Chromium: hls.js plays the live stream.

Debian's Chromium is driven by Playwright (tests/chromium.py).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.chromium import async_browser
from tests.interop.conftest import Peers, StartRelaycast, ffmpeg_publish

pytestmark = [pytest.mark.interop, pytest.mark.serial, pytest.mark.solo]


async def _watch(url: str, seconds: float) -> list[dict[str, Any]]:
    """Samples of the page's ``currentTime`` (``t``), player errors and the wall clock
    (``at``, loop time) every half second for ``seconds``."""
    samples: list[dict[str, Any]] = []
    async with async_browser() as browser:
        page = await browser.new_page()
        await page.goto(url)
        probe = (
            "JSON.stringify({t: document.getElementById('video').currentTime,"
            " errors: window.playerErrors || ['no player']})"
        )
        loop = asyncio.get_running_loop()
        for _ in range(1, int(seconds * 2)):
            sample = json.loads(await page.evaluate(probe) or "{}")
            samples.append({**sample, "at": loop.time()})
            await asyncio.sleep(0.5)
    return samples


@pytest.mark.parametrize("segment_format", ["fmp4", "ts"])
async def test_hlsjs_plays_the_live_stream(
    segment_format: str,
    start_relaycast: StartRelaycast,
    peers: Peers,
    tmp_path: Path,
    hlsjs: Path,
) -> None:
    relaycast = start_relaycast(env={"RELAYCAST_HLS__SEGMENT_FORMAT": segment_format})
    stream = relaycast.api.create_stream("browser", lowLatency=segment_format == "fmp4")
    peers.start("ffmpeg", ffmpeg_publish(relaycast.publish_url(stream), 40, size="640x360", gop=30))
    relaycast.api.wait_state(stream["streamId"], "live", timeout=20)
    page = f"{relaycast.server.base}/play/{stream['edgeId']}"
    samples = await _watch(page, seconds=16)
    times = [s["t"] for s in samples if "t" in s]
    assert times and max(times) - min(times) >= 5.0, samples[-5:]
    assert samples[-1]["errors"] == [], samples[-1]


async def test_hlsjs_keeps_playing_across_an_encoder_reconnect(
    start_relaycast: StartRelaycast, peers: Peers, tmp_path: Path, hlsjs: Path
) -> None:
    """The encoder is killed and comes back inside the reconnect window: the playlist
    continues after an EXT-X-DISCONTINUITY and hls.js plays on without a fatal error."""
    relaycast = start_relaycast()
    stream = relaycast.api.create_stream("reconnect", lowLatency=True, reconnectWindowSeconds=15)
    url = relaycast.publish_url(stream)
    first = peers.start("ffmpeg", ffmpeg_publish(url, 40, size="640x360", gop=30), limit=60)
    relaycast.api.wait_state(stream["streamId"], "live", timeout=20)
    page = f"{relaycast.server.base}/play/{stream['edgeId']}"
    watching = asyncio.create_task(_watch(page, seconds=32))
    loop = asyncio.get_running_loop()
    await asyncio.sleep(10)
    first.kill()
    await asyncio.sleep(1.5)
    back = loop.time()
    peers.start("ffmpeg-again", ffmpeg_publish(url, 40, size="640x360", gop=30), limit=60)
    samples = await watching
    media = stream["playback"]["hlsUrl"].replace("master.m3u8", "media.m3u8")
    async with aiohttp.ClientSession() as http, http.get(media) as resp:
        playlist = await resp.text()
    # the reconnect's EXT-X-DISCONTINUITY is listed, or has already left the window
    reconnected = "#EXT-X-DISCONTINUITY\n" in playlist or (
        "#EXT-X-DISCONTINUITY-SEQUENCE:0\n" not in playlist
    )
    assert reconnected and "#EXT-X-ENDLIST" not in playlist, playlist
    before = [s["t"] for s in samples if "t" in s and s["at"] < back]
    after = [s["t"] for s in samples if "t" in s and s["at"] >= back]
    assert before and max(before) - min(before) >= 3.0, samples[:20]
    assert after and max(after) - max(before) >= 5.0, samples[-20:]
    assert samples[-1]["errors"] == [], samples[-1]
