"""The media plane's health snapshot under the API's names: the same JSON as before
the snapshot became a dataclass (the API, not ingest, names and shapes it)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from control_api.presenters.live_streams import ingest_health
from server.ingest.health import AudioFigures, EncoderHealth, SrtLinkFigures, VideoFigures
from server.protocols.srt import SrtStats

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _stats(received: int, lost: int, retransmitted: int) -> SrtStats:
    zero = dict.fromkeys(SrtStats.__dataclass_fields__, 0)
    zero.update(
        rtt_ms=12.34567,
        latency_ms=120,
        encrypted=True,
        key_length=16,
        packets_received=received,
        packets_lost=lost,
        packets_retransmitted_received=retransmitted,
        packets_dropped=1,
    )
    return SrtStats(**zero)


def test_srt_loss_rate_counts_each_first_transmission_once() -> None:
    # 1000 arrived, 40 of them retransmissions, 50 lost: 1010 first sends, 50 lost.
    link = SrtLinkFigures.of(_stats(1000, 50, 40))
    assert link.loss_rate == round(50 / 1010, 6) and link.rtt_ms == 12.346
    assert link.packets_retransmitted == 40 and link.packets_dropped == 1
    assert SrtLinkFigures.of(_stats(0, 0, 0)).loss_rate == 0.0


def test_health_json_keeps_the_api_names() -> None:
    health = EncoderHealth(
        protocol="srt",
        remote_address="10.0.0.7:5000",
        connected_at=AT,
        encoder_connected=False,
        encoder_left_at=AT,
        session_id="ses_1",
        bitrate=2_000_000,
        bytes_in=4096,
        video=VideoFigures("h264", 1280, 720, 30.0, 2.0),
        audio=AudioFigures("aac", 48000, 2),
        frames_dropped=3,
        srt=SrtLinkFigures.of(_stats(1000, 50, 40)),
    )
    shown = json.loads(ingest_health(health).model_dump_json(by_alias=True, exclude_none=True))
    assert shown["encoderConnected"] is False and shown["encoderLeftAt"].startswith("2026-01-02")
    assert shown["remoteAddress"] == "10.0.0.7:5000" and shown["bytesIn"] == 4096
    assert shown["video"] == {
        "codec": "h264",
        "width": 1280,
        "height": 720,
        "fps": 30.0,
        "keyframeInterval": 2.0,
    }
    assert shown["audio"] == {"codec": "aac", "sampleRate": 48000, "channels": 2}
    assert shown["framesDropped"] == 3 and shown["sessionId"] == "ses_1"
    assert set(shown["srt"]) == {
        "rttMs",
        "latencyMs",
        "encrypted",
        "keyLength",
        "lossRate",
        "packetsReceived",
        "packetsLost",
        "packetsRetransmitted",
        "packetsDropped",
    }
    assert shown["srt"]["lossRate"] == round(50 / 1010, 6)
