"""WHIP ingest and WHEP playback against a real ``relaycast serve``, with aiortc peers
over real UDP (ICE, DTLS, SRTP): HLS reads back H.264 + AAC, WHEP plays, refusals get
their status codes, and sessions end within the timeouts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.interop.conftest import Relaycast, wait_for
from tests.interop.test_srt_ingest import probe_hls
from tests.interop.webrtc_peers import WhipPublisher, delete, make_media

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def relaycast_env() -> dict[str, str]:
    return {"RELAYCAST_WEBRTC__CONNECT_TIMEOUT": "3", "RELAYCAST_WEBRTC__IDLE_TIMEOUT": "2"}


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_media(tmp_path_factory.mktemp("webrtc-media"))


async def _wait(fn: Any, ok: Any, seconds: float, what: str) -> Any:
    return await asyncio.to_thread(wait_for, fn, ok, seconds, what)


async def test_whip_publish_goes_live_with_h264_and_aac_in_hls(
    relaycast: Relaycast, media: tuple[Path, Path]
) -> None:
    stream = relaycast.api.create_stream("whip", reconnectWindowSeconds=0)
    assert stream["ingest"]["whipUrl"].endswith("/whip/live")
    assert stream["playback"]["whepUrl"].endswith(f"/whep/{stream['edgeId']}")
    publisher = WhipPublisher(relaycast.server.base, stream["ingest"]["streamKey"], *media)
    try:
        answer = await publisher.start()
        assert answer.status == 201, answer.body
        assert answer.location is not None and answer.location.startswith("/whip/live/")
        assert "a=rtpmap" in answer.body and "H264" in answer.body
        health = await _wait(
            lambda: relaycast.api.health(stream["streamId"]),
            lambda h: h["state"] == "live" and (h.get("ingest") or {}).get("audio") is not None,
            15,
            "the WHIP stream to be live with audio",
        )
        assert health["ingest"]["protocol"] == "whip"
        assert health["ingest"]["video"]["codec"] == "h264"
        assert health["ingest"]["audio"]["codec"] == "aac"
        codecs = await asyncio.to_thread(probe_hls, stream["playback"]["hlsUrl"])
        assert codecs == {"video": "h264", "audio": "aac"}
        status = await asyncio.to_thread(delete, relaycast.server.base + answer.location)
        assert status == 200
        await _wait(
            lambda: relaycast.api.state(stream["streamId"]),
            lambda s: s == "ended",
            10,
            "DELETE to end the session",
        )
    finally:
        await publisher.close()
