"""RTMP players of a stream another node carries: the relay's records, its one
upstream per edge id, and how the playback service admits its players."""

from __future__ import annotations

import asyncio
import time

import pytest

from server.bus import Stream, StreamGrant
from server.bus.items import Discontinuity
from server.hls import tokens
from server.media import h264, nal
from server.media.frame import CodecConfig, Frame, TrackKind
from server.playback import PlayRefused
from server.playback.relay import (
    AUDIENCE,
    DISCONTINUITY,
    RECORD,
    Audience,
    PlayerRelays,
    RelayDecoder,
    RelayError,
    RelayLimits,
    encode_item,
)
from server.playback.viewers import RelayedAudience
from tests.unit.bus.helpers import AUDIO_CONFIG
from tests.unit.media.vectors import encode_annexb
from tests.unit.playback.test_service import KEY, build

IDR = nal.nals_to_length_prefixed([b"\x65\x88\x84\x00\x33"])


def _video_config() -> CodecConfig:
    au, _ = encode_annexb("libx264", 320, 180, 1, (("preset", "ultrafast"),))[0]
    record = h264.build_avcc(*h264.parameter_sets(nal.split_annexb(au)))
    return CodecConfig(TrackKind.VIDEO, "h264", record, width=320, height=180)


def _items(video: CodecConfig) -> list[tuple[Frame | CodecConfig, int]]:
    return [
        (video, 0),
        (AUDIO_CONFIG, 0),
        (Frame(TrackKind.VIDEO, "h264", 90_000, 92_970, True, IDR), 1000),
        (Frame(TrackKind.AUDIO, "aac", 90_000, 90_000, True, b"\x21\x22\x23"), 1000),
    ]


def test_configs_and_frames_survive_the_trip_cut_anywhere() -> None:
    video = _video_config()
    items = _items(video)
    wire = b"".join(encode_item(item, ms) for item, ms in items) + DISCONTINUITY
    decoder = RelayDecoder(1024 * 1024)
    out = [x for i in range(len(wire)) for x in decoder.feed(wire[i : i + 1])]
    assert isinstance(out.pop(), Discontinuity)
    media = [o for o in out if isinstance(o, Frame | CodecConfig)]
    assert [(o.track, o.codec) for o in media] == [(i.track, i.codec) for i, _ in items]
    configs = [o for o in out if isinstance(o, CodecConfig)]
    assert [c.extradata for c in configs] == [video.extradata, AUDIO_CONFIG.extradata]
    assert (configs[0].width, configs[1].sample_rate) == (320, 44100)
    frames = [o for o in out if isinstance(o, Frame)]
    assert [(f.dts, f.pts, f.keyframe, f.payload) for f in frames] == [
        (90_000, 92_970, True, IDR),
        (90_000, 90_000, True, b"\x21\x22\x23"),
    ]


def test_a_record_over_its_bound_is_refused_before_it_is_buffered() -> None:
    frame = Frame(TrackKind.AUDIO, "aac", 0, 0, True, b"\x00" * 5000)
    with pytest.raises(RelayError):
        RelayDecoder(4096).feed(encode_item(frame, 0)[:20])


class Lookup:
    def __init__(self) -> None:
        self.calls = 0

    async def owner_url(self, edge_id: str) -> str | None:
        self.calls += 1
        await asyncio.sleep(0.01)
        return None  # no other node carries it


async def test_players_arriving_together_share_one_upstream() -> None:
    service, *_ = build()
    lookup = Lookup()
    relays = PlayerRelays(lookup.owner_url, service, RelayLimits(1.0, 1.0, 1 << 20, 4))
    service.relays = relays
    assert service.needs_relay("lse_far") and not service.needs_relay("lse_1")
    assert await asyncio.gather(*(relays.attach("lse_far") for _ in range(3))) == [False] * 3
    assert lookup.calls == 1
    await service.close()


async def test_a_relayed_stream_checks_tokens_counts_players_and_is_not_relayed_on() -> None:
    service, *_ = build()
    grant = StreamGrant("ls_2", "env", True, 0, edge_id="lse_2", private=True, max_clients=1)
    stream = Stream("ls_2")
    service.relay_opened(grant, stream)
    assert service.relayable("lse_2") is None and service.relayable("lse_1") is not None
    with pytest.raises(PlayRefused):
        service.open("rtmp", "lse_2", "", "1.2.3.4:5", with_reader=False)
    token = tokens.mint(KEY, "lse_2", int(time.time()) + 3600)
    service.open("rtmp", "lse_2", token, "1.2.3.4:5", with_reader=False)
    with pytest.raises(PlayRefused, match="maximum"):
        service.open("rtmp", "lse_2", token, "1.2.3.4:6", with_reader=False)
    service.relay_closed("lse_2", stream)
    assert service.players("lse_2") == 0
    assert service.viewership("ls_2") is None  # the owner keeps the session's figures


async def test_the_owner_counts_the_players_other_nodes_relay_its_stream_to() -> None:
    service, *_ = build(max_clients=3)
    assert not service.relay_players("lse_1", "r1", 2)  # not a relay of this stream
    assert service.relay_players("lse_1", "r1", 0, start=True)
    assert service.relay_players("lse_1", "r2", 0, start=True)
    assert service.relay_players("lse_1", "r1", 2)
    service.open("rtmp", "lse_1", "", "1.2.3.4:5", with_reader=False)
    assert service.audience("lse_1", "r2") == 3 and service.audience("lse_1", "r1") == 1
    with pytest.raises(PlayRefused, match="maximum"):
        service.open("rtmp", "lse_1", "", "1.2.3.4:6", with_reader=False)
    service.relay_players("lse_1", "r1", None)  # that relay ended
    assert service.audience("lse_1", "r1") is None
    service.open("rtmp", "lse_1", "", "1.2.3.4:6", with_reader=False)


async def test_a_relaying_node_counts_the_viewers_elsewhere() -> None:
    service, *_ = build()
    grant = StreamGrant("ls_2", "env", True, 0, edge_id="lse_2", max_clients=2)
    stream = Stream("ls_2")
    service.relay_opened(grant, stream)
    assert RelayDecoder(16).feed(RECORD.pack(AUDIENCE, 1, 0)) == [Audience(1)]
    service.relay_elsewhere("lse_2", stream, 1)
    service.open("rtmp", "lse_2", "", "1.2.3.4:5", with_reader=False)
    with pytest.raises(PlayRefused, match="maximum"):
        service.open("rtmp", "lse_2", "", "1.2.3.4:6", with_reader=False)
    assert service.players("lse_2") == 1  # what keeps the relay up: this node's only


async def test_the_owner_s_figures_count_the_players_relayed_elsewhere() -> None:
    service, _, _, clock, _ = build()
    assert service.relay_players("lse_1", "r1", 0, start=True)
    service.open("rtmp", "lse_1", "", "1.2.3.4:5", with_reader=False)
    there = RelayedAudience(rtmp=1, srt=1, webrtc=1, views=4)  # one left already
    assert service.relay_players("lse_1", "r1", 3, audience=there)
    clock.now += 10
    now = service.viewership("ls_1")
    assert now is not None
    assert (now.rtmp, now.srt, now.webrtc, now.peak_viewers) == (2, 1, 1, 4)
    assert now.total_views == 5
    assert now.viewer_seconds == pytest.approx(40.0)  # 10 s of 1 here and 3 there
    service.relay_players("lse_1", "r1", None)  # the relay ended: its views stay
    clock.now += 10
    later = service.viewership("ls_1")
    assert later is not None
    assert (later.rtmp, later.srt, later.webrtc, later.total_views) == (1, 0, 0, 5)
    assert later.viewer_seconds == pytest.approx(50.0)
    assert later.peak_viewers == 4


async def test_a_relaying_node_reports_its_players_by_protocol() -> None:
    service, *_ = build()
    grant = StreamGrant("ls_2", "env", True, 0, edge_id="lse_2")
    service.relay_opened(grant, Stream("ls_2"))
    service.open("rtmp", "lse_2", "", "1.2.3.4:5", with_reader=False)
    service.open("srt", "lse_2", "", "1.2.3.4:6", with_reader=False).close()
    assert service.relayed_audience("lse_2") == RelayedAudience(rtmp=1, views=2)
    assert service.relayed_audience("lse_9") == RelayedAudience()
