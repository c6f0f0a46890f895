"""Preload-hinted parts are sent while they are written (``hls.chunked_parts``).

While ffmpeg publishes, the test requests the part named by ``EXT-X-PRELOAD-HINT``
(as Apple players do) and reads the chunked response. Proof that bytes are streamed,
not held until the part is done: at the moment the first bytes arrived, the playlist did
not list the part yet. The streamed body must equal the finished part fetched again,
and be CMAF chunks (one moof+mdat per video frame).
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request

import aiohttp
import pytest

from tests.interop.conftest import Peers, StartRelaycast, ffmpeg_publish, wait_for

pytestmark = pytest.mark.interop

ROUNDS = 6
FPS = 25
_HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"')


def _text(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return str(resp.read().decode())
    except urllib.error.HTTPError as err:
        return f"HTTP {err.code}"


def _part_line(name: str) -> re.Pattern[str]:
    """The part's EXT-X-PART line (the preload hint names it too, before it exists)."""
    return re.compile(rf'#EXT-X-PART:DURATION=([\d.]+),URI="{re.escape(name)}"')


async def _listed(http: aiohttp.ClientSession, media: str, name: str) -> bool:
    async with http.get(media) as resp:
        return _part_line(name).search(await resp.text()) is not None


async def _stream_hinted(
    http: aiohttp.ClientSession, media: str
) -> tuple[str, bytes, bool, dict[str, str]]:
    """Fetch the hinted part; also whether it was unlisted when its first bytes came."""
    async with http.get(media) as resp:
        hint = _HINT.search(await resp.text())
    assert hint, "no preload hint in the playlist"
    name = hint.group(1)
    body = b""
    early: bool | None = None
    base = media.rsplit("/", 1)[0]
    async with http.get(f"{base}/{name}") as resp:
        assert resp.status == 200, resp.status
        headers = dict(resp.headers)
        async for data, _ in resp.content.iter_chunks():
            if data and early is None:
                early = not await _listed(http, media, name)
            body += data
    return name, body, bool(early), headers


async def test_hinted_part_is_streamed_as_it_is_written(
    start_relaycast: StartRelaycast, peers: Peers
) -> None:
    relaycast = start_relaycast(env={"RELAYCAST_HLS__CHUNKED_PARTS": "true"})
    stream = relaycast.api.create_stream("chunked", lowLatency=True)
    peers.start("ffmpeg", ffmpeg_publish(relaycast.publish_url(stream), 40, fps=FPS, gop=2 * FPS))
    relaycast.api.wait_state(stream["streamId"], "live", timeout=20)
    media = stream["playback"]["hlsUrl"].replace("master.m3u8", "media.m3u8")
    wait_for(lambda: _text(media), lambda t: "PRELOAD-HINT" in t, 20, "a preload hint")

    early_rounds = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
        for _ in range(ROUNDS):
            name, streamed, early, headers = await _stream_hinted(http, media)
            assert headers.get("Transfer-Encoding") == "chunked", headers
            assert "immutable" in headers["Cache-Control"]
            async with http.get(media.rsplit("/", 1)[0] + "/" + name) as resp:
                finished = await resp.read()
                assert resp.status == 200 and "Transfer-Encoding" not in resp.headers
            assert streamed == finished, f"{name}: streamed bytes differ from the finished part"
            assert _part_line(name).search(_text(media)), f"{name} not listed once complete"
            early_rounds += early
    assert early_rounds > 0, "every hinted part arrived only once it was complete"
