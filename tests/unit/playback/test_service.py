"""Admission of RTMP/SRT players and the one viewer count HLS shares with them."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from server.bus import Stream, StreamGrant
from server.hls import tokens
from server.hls.packager import HlsService, PlaybackInfo
from server.ingest.ports import IngestRefusal
from server.ingest.refusals import RefusalReason, RefusalReporter
from server.logsample import SampledLog
from server.media.frame import CodecConfig, Frame, TrackKind
from server.playback import PlaybackService, PlayRefused, ViewershipStats
from server.settings import HlsSettings, PlaybackSettings
from tests.unit.bus.helpers import AUDIO_CONFIG, VIDEO_CONFIG, video

KEY = b"k" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Saved:
    def __init__(self) -> None:
        self.sessions: dict[str, ViewershipStats] = {}

    async def session_viewers(self, session_id: str, stats: ViewershipStats) -> None:
        self.sessions[session_id] = stats


def build(
    **grant: object,
) -> tuple[PlaybackService, HlsService, Stream, Clock, RefusalReporter]:
    clock = Clock()
    hls = HlsService(HlsSettings(), playback_key=KEY)
    refusals = RefusalReporter(SampledLog(logging.getLogger("test"), 100, "refusals"))
    service = PlaybackService(hls, PlaybackSettings(), refusals, KEY, clock=clock)
    stream = Stream("ls_1")
    stream.set_config(VIDEO_CONFIG)
    stream.set_config(AUDIO_CONFIG)
    stream.publish(video(0, key=True))
    fields: dict[str, object] = {"edge_id": "lse_1", **grant}
    service.stream_opened(StreamGrant("ls_1", "env", True, 0, **fields), stream, "ses_1")  # type: ignore[arg-type]
    return service, hls, stream, clock, refusals


async def test_a_player_reads_from_the_latest_keyframe_and_is_counted() -> None:
    service, _, _, clock, _ = build()
    ticket = service.open("rtmp", "lse_1", "", "1.2.3.4:5")
    assert ticket.reader.next_nowait() is not None  # configs and GOP are queued
    assert service.players("lse_1") == 1
    clock.now += 30
    stats = service.viewership("ls_1")
    assert stats is not None
    assert (stats.rtmp, stats.srt, stats.total, stats.peak_viewers, stats.total_views) == (
        1,
        0,
        1,
        1,
        1,
    )
    assert stats.viewer_seconds == 30.0
    ticket.close()
    ticket.close()  # idempotent
    clock.now += 30
    stats = service.viewership("ls_1")
    assert stats is not None and stats.total == 0 and stats.viewer_seconds == 30.0
    assert stats.peak_viewers == 1


async def test_unknown_edge_private_stream_and_refusals_are_counted() -> None:
    service, _, _, _, refusals = build(private=True)
    with pytest.raises(PlayRefused) as unknown:
        service.open("srt", "lse_nope", "", "1.2.3.4:5")
    assert unknown.value.reason is RefusalReason.NOT_LIVE
    for token in ("", "123.bogus", tokens.mint(KEY, "lse_other", int(time.time()) + 60)):
        with pytest.raises(PlayRefused) as refused:
            service.open("rtmp", "lse_1", token, "1.2.3.4:5")
        assert refused.value.reason is RefusalReason.PLAYBACK_TOKEN
    good = tokens.mint(KEY, "lse_1", int(time.time()) + 60)
    service.open("rtmp", "lse_1", good, "1.2.3.4:5").close()
    assert refusals.counts == {"srt:stream-not-live": 1, "rtmp:playback-token": 3}
    seen: list[IngestRefusal] = []
    refusals.sinks.append(type("Sink", (), {"refused": lambda self, r: seen.append(r)})())
    with pytest.raises(PlayRefused):
        service.open("rtmp", "lse_1", "", "1.2.3.4:5")
    assert seen[0].stream_id == "ls_1"  # tied to its stream: its environment's keys see it


async def test_max_clients_counts_hls_rtmp_and_srt_together() -> None:
    service, hls, stream, _, _ = build(max_clients=3)
    packager = hls.start(PlaybackInfo("ls_1", "lse_1", True, max_clients=3), stream)
    assert packager.viewers.admit("hls-viewer", time.monotonic())
    rtmp = service.open("rtmp", "lse_1", "", "a")
    srt = service.open("srt", "lse_1", "", "b")
    for protocol in ("rtmp", "srt"):
        with pytest.raises(PlayRefused) as refused:
            service.open(protocol, "lse_1", "", "c")
        assert refused.value.reason is RefusalReason.MAX_CLIENTS
    assert not packager.viewers.admit("second-hls-viewer", time.monotonic())  # HLS: 429
    srt.close()
    assert packager.viewers.admit("second-hls-viewer", time.monotonic())
    stats = service.viewership("ls_1")
    assert stats is not None and (stats.hls, stats.rtmp, stats.total) == (2, 1, 3)
    rtmp.close()
    await hls.close()


async def test_hevc_needs_an_enhanced_rtmp_player() -> None:
    service, _, stream, _, _ = build()
    stream.set_config(CodecConfig(TrackKind.VIDEO, "h265", b"\x01" * 23, width=640, height=360))
    with pytest.raises(PlayRefused) as refused:
        service.open("rtmp", "lse_1", "", "a", enhanced_rtmp=False)
    assert refused.value.reason is RefusalReason.CODEC_UNSUPPORTED
    service.open("rtmp", "lse_1", "", "a", enhanced_rtmp=True).close()


async def test_opus_needs_an_enhanced_rtmp_player() -> None:
    service, _, stream, _, _ = build()
    stream.set_config(CodecConfig(TrackKind.AUDIO, "opus", b"OpusHead" + bytes(11)))
    with pytest.raises(PlayRefused) as refused:
        service.open("rtmp", "lse_1", "", "a", enhanced_rtmp=False)
    assert refused.value.reason is RefusalReason.CODEC_UNSUPPORTED
    with pytest.raises(PlayRefused) as over_srt:  # MPEG-TS output carries AAC only
        service.open("srt", "lse_1", "", "a")
    assert over_srt.value.reason is RefusalReason.CODEC_UNSUPPORTED


async def test_an_ended_session_saves_its_audience() -> None:
    service, _, stream, clock, _ = build()
    service.session_check = 0.01
    saved = Saved()
    service.sink = saved
    ticket = service.open("srt", "lse_1", "", "a")
    clock.now += 12.5
    stream.end("encoder left")
    ticket.close()
    for _ in range(100):
        if saved.sessions:
            break
        await asyncio.sleep(0.01)
    stats = saved.sessions["ses_1"]
    assert (stats.peak_viewers, stats.viewer_seconds) == (1, 12.5)
    with pytest.raises(PlayRefused):
        service.open("srt", "lse_1", "", "a")  # the edge is no longer playable
    final = service.viewership("ls_1")
    assert final is not None and final.total == 0 and final.peak_viewers == 1
    assert "ls_1" not in {g.stream_id for g, _ in service.snapshots()}
    await service.close()


async def test_a_withdrawn_player_is_no_view() -> None:
    service, _, _, _, _ = build()
    service.open("srt", "lse_1", "", "a").withdraw()
    stats = service.viewership("ls_1")
    assert stats is not None and (stats.total, stats.total_views, stats.viewer_seconds) == (0, 0, 0)


class FakePlayer:
    """A fanout member that records what it was sent."""

    def __init__(self) -> None:
        self.paused = False
        self.sent = b""

    def begin(self, metadata: object, wire: bytes) -> None:
        self.sent += wire

    def write(self, wire: bytes) -> None:
        self.sent += wire

    def end(self, reason: str, stream_ended: bool) -> None:
        pass


async def test_rtmp_players_are_sent_a_due_batch_at_the_publish_not_on_a_timer() -> None:
    """The fanout wakes with the publisher: once a batch is due, the next publish goes
    out in its own loop turn (a timer of the fanout's own cost a process wake-up per
    batch)."""
    service, _, stream, _, _ = build()
    service.settings = PlaybackSettings(batch_interval=0.05)
    ticket = service.open("rtmp", "lse_1", "", "a", with_reader=False)
    player = FakePlayer()
    service.join_rtmp(ticket, player, 4096, 1)
    await asyncio.sleep(0.06)  # past due, before a 50 ms timer's second tick
    marker = b"\xab\xcd" * 50
    stream.publish(Frame(TrackKind.VIDEO, "h264", 3000, 3000, False, marker))
    for _ in range(3):
        await asyncio.sleep(0)
    assert marker in player.sent
    stream.end("encoder left")
    await service.close()
