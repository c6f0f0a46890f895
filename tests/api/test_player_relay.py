"""RTMP/SRT players of a stream another node carries, over 127.0.0.1: the relaying
node's playback service pulls from the owner's relay route, the two exchange their
viewer counts for maxClients, and the relay goes once its last player has."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import pytest
from aiohttp import web

from server.bus import Stream, StreamGrant
from server.hls.packager import HlsService
from server.ingest.refusals import RefusalReporter
from server.logsample import SampledLog
from server.media.frame import Frame, TrackKind
from server.playback import PlaybackService, PlayRefused
from server.playback.relay import PlayerRelays, RelayLimits, mount_source
from server.settings import HlsSettings, PlaybackSettings
from tests.api.test_hls_proxy import _site
from tests.unit.bus.helpers import AUDIO_CONFIG, audio
from tests.unit.playback.test_relay import IDR, _video_config
from tests.unit.playback.test_service import KEY


def _service() -> PlaybackService:
    refusals = RefusalReporter(SampledLog(logging.getLogger("test"), 100, "refusals"))
    return PlaybackService(HlsService(HlsSettings()), PlaybackSettings(), refusals, KEY)


async def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 4.0
    while not check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_a_relay_counts_viewers_on_both_nodes_and_goes_with_its_last_player() -> None:
    owner, stream = _service(), Stream("ls_1")
    stream.set_config(_video_config())
    stream.set_config(AUDIO_CONFIG)
    owner.stream_opened(
        StreamGrant("ls_1", "env", True, 0, edge_id="lse_1", max_clients=2), stream, "s"
    )
    app = web.Application()
    mount_source(app, owner)
    runner, url = await _site(app)

    async def owner_url(edge_id: str) -> str | None:
        return url

    async def publish() -> None:
        for n in range(1, 10_000):
            stream.publish(Frame(TrackKind.VIDEO, "h264", n * 3000, n * 3000, n % 10 == 0, IDR))
            stream.publish(audio(n))
            await asyncio.sleep(0.03)

    feeder = asyncio.get_running_loop().create_task(publish())
    here = _service()
    here.relays = PlayerRelays(owner_url, here, RelayLimits(2.0, 1.0, 1 << 20, 4))
    try:
        assert await here.relays.attach("lse_1")
        ticket = here.open("rtmp", "lse_1", "", "1.2.3.4:5", with_reader=False)
        await _until(lambda: owner.counted("lse_1") == 1, "the owner to hear of our player")
        owner.open("rtmp", "lse_1", "", "5.6.7.8:9", with_reader=False)
        await _until(lambda: here.counted("lse_1") == 2, "us to hear of the owner's player")
        with pytest.raises(PlayRefused, match="maximum"):
            here.open("rtmp", "lse_1", "", "1.2.3.4:6", with_reader=False)

        ticket.close()
        await _until(lambda: here.needs_relay("lse_1"), "the relay to go without players")
        await _until(lambda: owner.counted("lse_1") == 1, "the owner to forget the relay")
    finally:
        feeder.cancel()
        stream.end()
        await here.close()
        await owner.close()
        await runner.cleanup()
