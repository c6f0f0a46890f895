"""The transcode service's decisions that need no worker: which sessions it takes on,
and the passthrough fallback (with a warning and a count) when there is no capacity."""

from __future__ import annotations

import asyncio

from server.bus import Stream, StreamGrant
from server.media.frame import TrackKind
from server.settings import Rung, TranscodeSettings
from server.transcode.service import TranscodeService
from tests.unit.media.avsource import media

SMALL = {"standard": (Rung(name="144p", height=144, video_bitrate=100_000),)}


def _grant(quality: str) -> StreamGrant:
    return StreamGrant("ls_1", "env", True, 0, quality=quality)


async def _publish(stream: Stream) -> None:
    m = media(seconds=2)
    stream.announce_tracks(frozenset({TrackKind.VIDEO, TrackKind.AUDIO}))
    for config in m.configs:
        stream.set_config(config)
    for frame in m.frames:
        stream.publish(frame)
    await asyncio.sleep(0.05)


async def test_no_capacity_leaves_the_stream_passthrough_with_a_warning() -> None:
    service = TranscodeService(TranscodeSettings(max_streams=0, ladders=SMALL))
    stream = Stream("ls_1")
    service.stream_opened(_grant("standard"), stream, "ses_1")
    await _publish(stream)
    health = service.health("ls_1")
    assert health.renditions == ()
    assert len(health.warnings) == 1 and "transcode.max_streams = 0" in health.warnings[0]
    assert service.fallbacks["capacity"] == 1
    assert [r.kind for r in stream.stats().readers] == []  # its reader is gone
    await service.close()


async def test_passthrough_sessions_are_not_read_at_all() -> None:
    service = TranscodeService(TranscodeSettings(max_streams=0))
    stream = Stream("ls_1")
    service.stream_opened(_grant("passthrough"), stream, "ses_1")
    assert stream.readers == ()
    assert service.health("ls_1").warnings == ()
    await service.close()


async def test_a_source_shorter_than_every_rung_needs_no_worker() -> None:
    service = TranscodeService(TranscodeSettings(max_streams=0))
    stream = Stream("ls_1")
    service.stream_opened(_grant("high"), stream, "ses_1")  # 320x180 source, high = 480p+
    await _publish(stream)
    assert service.health("ls_1").warnings == ()  # nothing to do: not a fallback
    assert service.fallbacks["capacity"] == 0
    await service.close()
