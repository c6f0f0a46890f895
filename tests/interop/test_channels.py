"""A channel played out for real: library items conformed into one continuous live
stream, read back over HLS with PyAV."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.interop.channel_helpers import (
    FRAME,
    PROFILE,
    make_channel,
    now_playing,
    three_items,
    upload,
    watch,
)
from tests.interop.conftest import StartRelaycast, wait_for

pytestmark = [pytest.mark.interop, pytest.mark.serial]


def test_three_different_items_play_in_order_as_one_continuous_stream(
    start_relaycast: StartRelaycast, tmp_path: Path
) -> None:
    relaycast = start_relaycast()
    api = relaycast.api
    media = [upload(api, path) for path in three_items(tmp_path)]
    stream = make_channel(api, media, loop=True)
    stream_id = stream["streamId"]
    assert api.state(stream_id) == "idle"
    api.ok("POST", f"/v1/live-streams/{stream_id}/start")
    api.wait_state(stream_id, "live", timeout=20)
    order: list[str] = []

    def on_air() -> list[str]:
        playing = now_playing(api, stream_id)
        if playing and (not order or order[-1] != playing["mediaId"]):
            order.append(playing["mediaId"])
        return order

    with ThreadPoolExecutor(1) as pool:
        viewer = pool.submit(watch, stream["playback"]["hlsUrl"], 10.5)
        wait_for(on_air, lambda seen: len(seen) >= 4, 20, "the queue to loop")
        watched = viewer.result(60)
    assert order[:4] == [*media, media[0]], relaycast.log()[-3000:]
    assert watched.sizes == {(PROFILE["width"], PROFILE["height"])}
    gaps = watched.video_gaps()
    assert gaps and min(gaps) > 0, "video PTS must increase"
    assert max(gaps) <= FRAME + 0.002, f"largest video gap {max(gaps):.3f}s"
    audio_gaps = watched.audio_gaps()
    assert min(audio_gaps) > 0 and max(audio_gaps) <= 0.03, (min(audio_gaps), max(audio_gaps))
    assert abs(watched.audio[-1] - watched.video[-1]) < 0.5
    api.ok("POST", f"/v1/live-streams/{stream_id}/stop")
    api.wait_state(stream_id, "ended", timeout=10)  # the session is over, as for an encoder
    assert now_playing(api, stream_id) is None
