"""RtmpIngestPump: the per-message loop of an RTMP ingest connection (issue 20).

Media messages become frames and configs on the claim's stream, in order, inside the
pump; only what needs a decision comes out, in the order the peer sent it; a malformed
tag comes out in its place and the rest of the read goes on; a pump re-entered while
it hands a frame to the claim (the application closing the connection from there)
hands out no event twice. Run against the compiled modules and their pure twins.
"""

from __future__ import annotations

from typing import Any

import pytest

from server.bus import PlanLimits
from server.bus import registry as registry_module
from server.ingest import claim as claim_module
from server.ingest import meter as meter_module
from server.ingest import rtmp_pump as pump_module
from server.media.frame import TrackKind
from server.protocols.rtmp import amf0
from server.protocols.rtmp import connection as connection_module
from server.protocols.rtmp import events as events_module
from server.protocols.rtmp.events import (
    ConnectRequested,
    HandshakeComplete,
    MetadataReceived,
    PublishRequested,
    Unpublished,
)
from server.protocols.rtmp.messages import MessageType

from .pump_driver import Ingest, Twins, comparable, media, real_tags

# Against the compiled modules and their pure-Python twins (tests/accel_twins.py).
pytestmark = pytest.mark.usefixtures("implementation")

AUDIO, VIDEO, DATA = int(MessageType.AUDIO), int(MessageType.VIDEO), int(MessageType.DATA_AMF0)
BAD_VIDEO = b"\x17\x01\x00\x00\x00\x00\x00\x00\x09ab"  # a NAL length past the tag's end


def ingest(limits: PlanLimits | None = None) -> Ingest:
    twins = Twins(
        connection_module, pump_module, claim_module, meter_module, registry_module, events_module
    )
    return Ingest(twins, limits)


def video_tags() -> list[tuple[int, int, bytes]]:
    return [tag for tag in real_tags() if tag[0] == VIDEO]


def audio_tags() -> list[tuple[int, int, bytes]]:
    return [tag for tag in real_tags() if tag[0] == AUDIO]


def frames(items: list[Any]) -> list[tuple[str, int, bool]]:
    """(track, dts, keyframe) of the frames among a reader's items."""
    out = []
    for item in items:
        if isinstance(item, tuple) and item[0] == "Frame":
            track, _codec, dts, _pts, keyframe, _payload = item[1]
            out.append((track.value, dts, keyframe))
    return out


def test_the_twins_under_test_are_one_implementation() -> None:
    """The driver's modules are all compiled or all pure (one twin per run)."""
    run = ingest()
    run.publish()
    assert type(run.pump).__module__ == "server.ingest.rtmp_pump"
    assert run.pump.conn is run.conn and run.pump.claim is run.claim


def test_publish_is_handed_out_and_media_becomes_frames_inside() -> None:
    run = ingest()
    handed = run.publish()
    assert [type(e) for e in handed] == [HandshakeComplete, ConnectRequested, PublishRequested]
    tags = list(real_tags())
    read = b"".join(media(kind, ts, body, 6 if kind == VIDEO else 4) for kind, ts, body in tags)
    assert run.feed(read) == []  # media only: nothing to decide
    assert run.pump.next_event() is None
    items = run.items()
    configs = [item[1][0] for item in items if item[0] == "ConfigChange"]
    assert [(c[0], c[1]) for c in configs] == [(TrackKind.VIDEO, "h264"), (TrackKind.AUDIO, "aac")]
    published = frames(items)
    # every tag but the two sequence headers and FFmpeg's end of sequence is a frame
    expected = [tag for tag in tags if tag[2][1] == 1]  # AVC NALU / AAC raw
    assert len(expected) == len(tags) - 3
    assert len(published) == len(expected) == run.stream.stats().frames_published
    video = [f for f in published if f[0] == "video"]
    assert video[0][2] and not any(f[2] for f in video[1:])  # one GOP, keyframe first
    assert [f[1] for f in video] == sorted(f[1] for f in video)  # decode order kept
    assert run.owner.asked == [("live", "")] and run.live.live


def test_decisions_come_out_in_the_order_sent_between_media() -> None:
    run = ingest()
    run.publish()
    header, key, *_ = video_tags()
    metadata = amf0.encode_values("@setDataFrame", "onMetaData", {"width": 160.0})
    text = amf0.encode_values("onTextData", {"text": "x"})
    read = b"".join(
        [
            media(VIDEO, 0, header[2]),
            media(DATA, 0, metadata, 5),
            media(DATA, 0, text, 5),  # other data: nothing the ingest keeps
            media(VIDEO, key[1], key[2]),
        ]
    )
    event = run.pump.receive(read, 1.0)
    assert isinstance(event, MetadataReceived) and event.metadata == {"width": 160.0}
    # the header before it was handled already, the keyframe after it not yet
    assert run.stream.video_config is not None
    assert run.stream.stats().frames_published == 0
    assert run.pump.next_event() is None
    assert run.stream.stats().frames_published == 1


def test_media_before_the_publish_or_after_unpublish_is_dropped_and_reads_unmetered() -> None:
    run = ingest()
    run.publish()
    run.pump.claim = None  # as before the application accepted the publish
    header, key, *_ = video_tags()
    read = media(VIDEO, 0, header[2]) + media(VIDEO, key[1], key[2])
    assert run.feed(read) == []
    assert run.stream.stats().frames_published == 0 and run.stream.video_config is None
    assert run.live.session_bytes == 0 and run.live.meter.bytes_in == 0
    run.pump.claim = run.claim
    assert run.feed(read) == []
    assert run.stream.stats().frames_published == 1
    assert run.live.session_bytes == len(read) == run.live.meter.bytes_in
    delete = media(20, 0, amf0.encode_values("deleteStream", 4.0, None, 1.0), 3)
    handed = run.feed(delete + media(VIDEO, key[1] + 40, key[2]))
    assert [type(e) for e in handed] == [Unpublished]
    assert run.pump.claim is None
    assert run.stream.stats().frames_published == 1


def test_a_malformed_tag_comes_out_in_its_place_and_the_read_goes_on() -> None:
    run = ingest()
    run.publish()
    header = video_tags()[0]
    audio_header, audio = audio_tags()[:2]
    event = run.pump.receive(
        media(VIDEO, 0, header[2])
        + media(VIDEO, 33, BAD_VIDEO)
        + media(AUDIO, audio_header[1], audio_header[2], 4)
        + media(AUDIO, audio[1], audio[2], 4),
        1.0,
    )
    assert isinstance(event, pump_module.MalformedMedia)
    assert event.kind == "video"
    assert str(event.error) == "NAL unit lengths do not add up to the sample size"
    assert comparable(event) == ("MalformedMedia", "video", str(event.error))
    assert run.stream.audio_config is None  # what follows is not handled yet
    run.conn.close("malformed media")  # what the application does
    assert run.pump.next_event() is None
    # as before the pump: the rest of the read still reaches the claim
    assert run.stream.audio_config is not None
    assert run.stream.stats().frames_published == 1


def test_a_pump_re_entered_from_the_claim_hands_out_each_event_once() -> None:
    """Going live (the first frame) pumps again, as the application's close does."""
    run = ingest()
    run.publish()
    inner: list[object] = []

    def pump_again() -> None:
        while (event := run.pump.next_event()) is not None:
            inner.append(event)

    run.owner.on_live = pump_again
    header, key, inter, *_ = video_tags()
    metadata = amf0.encode_values("@setDataFrame", "onMetaData", {"a": 1.0})
    read = b"".join(
        [
            media(VIDEO, 0, header[2]),
            media(VIDEO, key[1], key[2]),  # goes live: the rest is pumped from inside
            media(DATA, 0, metadata, 5),
            media(VIDEO, inter[1], inter[2]),
            media(DATA, 0, amf0.encode_values("onMetaData", {"b": 2.0}), 5),
        ]
    )
    outer = run.feed(read)
    assert outer == []
    assert [e.metadata for e in inner] == [{"a": 1.0}, {"b": 2.0}]  # type: ignore[attr-defined]
    assert run.stream.stats().frames_published == 2
    assert run.pump.next_event() is None


def test_a_plan_limit_broken_by_a_frame_fails_the_claim_and_later_frames_are_ignored() -> None:
    run = ingest(PlanLimits(100, 1000, 60.0, 10**9))  # 100 px wide at most: 160 breaks it
    run.publish()
    header, key, *_ = video_tags()
    assert run.feed(media(VIDEO, 0, header[2]) + media(VIDEO, key[1], key[2])) == []
    assert run.owner.asked[0][0] == "fail"
    assert run.stream.stats().frames_published == 0
