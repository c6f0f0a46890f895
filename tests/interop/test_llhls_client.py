"""Our own LL-HLS client follows a live ffmpeg publish part by part for 20 s.

It uses blocking reloads and delta updates the way an LL-HLS player does, fetches every
part once, and the test checks that nothing was missed or numbered wrongly, that every
held reload was answered once its part existed and (almost always) before the next one,
that the parts join into the segments, and that PyAV reads the parts as one continuous
stream.
"""

from __future__ import annotations

import io
import itertools
import statistics
import urllib.error
import urllib.request

import aiohttp
import av
import pytest

from tests.interop.conftest import Peers, Relaycast, ffmpeg_publish, wait_for
from tests.interop.llhls_client import Follower

pytestmark = pytest.mark.interop

FOLLOW_SECONDS = 20.0
FPS = 25


@pytest.fixture(scope="module")
def relaycast_env() -> dict[str, str]:
    """A 20 s window (10 x 2 s), longer than CAN-SKIP-UNTIL (12 s): delta updates offered."""
    return {"RELAYCAST_HLS__WINDOW_SEGMENTS": "10"}


def _text(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return str(resp.read().decode())
    except urllib.error.HTTPError as err:
        return f"HTTP {err.code}"


def _steps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def _check_continuity(data: bytes) -> tuple[int, float]:
    """Decode the joined parts; timestamps must advance by one frame each, no hole.
    Returns the decoded video frames and the seconds of video covered."""
    with av.open(io.BytesIO(data), mode="r", format="mp4") as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        times: dict[str, list[float]] = {"video": [], "audio": []}
        decoded = 0
        for packet in container.demux(video, audio):
            if packet.dts is None:
                continue
            kind = "video" if packet.stream is video else "audio"
            times[kind].append(float(packet.dts * packet.time_base))
            if kind == "video":
                decoded += len(packet.decode())
    for kind, series in times.items():
        steps = _steps(series)
        assert steps and min(steps) > 0, f"{kind} timestamps do not increase"
        usual = statistics.median(steps)
        assert max(steps) <= 1.5 * usual, f"{kind} has a hole: {max(steps):.3f} s vs {usual:.3f}"
    return decoded, times["video"][-1] - times["video"][0]


async def test_follows_parts_with_blocking_reloads_and_no_gap(
    relaycast: Relaycast, peers: Peers
) -> None:
    stream = relaycast.api.create_stream("llhls-client", lowLatency=True)
    publish = ffmpeg_publish(relaycast.publish_url(stream), 45, fps=FPS, gop=2 * FPS)
    peers.start("ffmpeg", publish, limit=90)
    relaycast.api.wait_state(stream["streamId"], "live", timeout=20)
    media = stream["playback"]["hlsUrl"].replace("master.m3u8", "media.m3u8")
    wait_for(lambda: _text(media), lambda t: "INDEPENDENT=YES" in t, 20, "LL parts listed")

    async with aiohttp.ClientSession() as http:
        follower = Follower(http, media)
        await follower.follow(FOLLOW_SECONDS)
        segments = follower.complete_segments()
        served = {
            msn: (await (await http.get(media.rsplit("/", 1)[0] + "/" + uri)).read())
            for msn, uri in follower.segment_uris.items()
            if msn in segments
        }

    assert follower.errors == []
    assert follower.gaps == [] and follower.duplicates == []
    parts = [part for part, _ in follower.parts]
    assert len(parts) >= 0.8 * FOLLOW_SECONDS / 0.5, f"only {len(parts)} parts in 20 s"
    for part in parts:  # positional numbering (media sequence, skips) matches the names
        assert part.uri == f"part{part.msn}.{part.index}.m4s", part
    assert all(0 < part.duration <= 0.5 + 1e-3 for part in parts)

    reloads = follower.reloads
    lags = [reload.lag(playlist) for reload, playlist in reloads]
    assert len(reloads) >= 0.8 * len(parts)
    assert None not in lags, "a held reload was answered before its part existed"
    prompt = sum(1 for lag in lags if lag == 0)
    assert prompt >= 0.8 * len(lags), f"answers lagged the edge: {lags}"
    assert any(reload.skipped > 0 for reload, _ in reloads), "no delta update was served"

    assert len(segments) >= 5
    for msn, joined in segments.items():
        assert served[msn] == joined, f"segment {msn} is not the concatenation of its parts"

    decoded, seconds = _check_continuity(follower.stream_bytes())
    assert decoded >= 0.8 * FOLLOW_SECONDS * FPS
    assert seconds >= 0.9 * sum(p.duration for p in parts[:-1])
