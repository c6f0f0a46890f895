"""A channel played out for real: library items conformed into one continuous live
stream, read back over HLS with PyAV."""

from __future__ import annotations

import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.interop.channel_helpers import (
    FRAME,
    PROFILE,
    make_channel,
    make_item,
    now_playing,
    three_items,
    upload,
    watch,
)
from tests.interop.conftest import Peers, StartRelaycast, ffmpeg_publish, wait_for

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
    ingest = api.wait_media(stream_id, timeout=15)["ingest"]
    assert ingest["protocol"] == "playout" and ingest["video"]["width"] == PROFILE["width"]
    api.ok("POST", f"/v1/live-streams/{stream_id}/stop")
    api.wait_state(stream_id, "ended", timeout=10)  # the session is over, as for an encoder
    assert now_playing(api, stream_id) is None


def test_an_encoder_takes_over_and_the_queue_resumes_where_it_stopped(
    start_relaycast: StartRelaycast, tmp_path: Path, peers: Peers
) -> None:
    relaycast = start_relaycast()
    api = relaycast.api
    long_item = upload(api, make_item(tmp_path / "long.mp4", "640x360", 30, 30, "48000:stereo"))
    stream = make_channel(api, [long_item], loop=True)
    stream_id = stream["streamId"]
    api.ok("POST", f"/v1/live-streams/{stream_id}/start")
    api.wait_state(stream_id, "live", timeout=20)
    before = wait_for(
        lambda: now_playing(api, stream_id),
        lambda playing: playing is not None and playing["positionSeconds"] >= 3,
        20,
        "three seconds of the item on air",
    )
    assert before is not None
    encoder = peers.start("ffmpeg", ffmpeg_publish(relaycast.publish_url(stream), 6, fps=30))
    wait_for(
        lambda: api.health(stream_id)["ingest"],
        lambda ingest: (ingest.get("video") or {}).get("width") == 640,
        15,
        "the encoder's picture on the stream",
    )
    assert now_playing(api, stream_id) is None, "nothing of the queue is on air meanwhile"
    assert encoder.wait(30) == 0, encoder.output()
    after = wait_for(
        lambda: now_playing(api, stream_id),
        lambda playing: playing is not None,
        15,
        "the queue back on air",
    )
    assert after is not None and after["itemId"] == before["itemId"]
    assert before["positionSeconds"] <= after["positionSeconds"] <= before["positionSeconds"] + 4
    assert api.state(stream_id) == "live"
    assert api.sessions(stream_id)["total"] == 1, "one session across the takeover"
    media = stream["playback"]["hlsUrl"].replace("master.m3u8", "media.m3u8")
    playlist = wait_for(
        lambda: _text(media), lambda t: t.count("#EXT-X-DISCONTINUITY\n") >= 2, 15, "two cuts"
    )
    assert "#EXT-X-ENDLIST" not in playlist
    assert "taken over by an encoder" in relaycast.log() or "takes over" in relaycast.log()


def _text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return str(resp.read().decode())
