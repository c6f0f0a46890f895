"""Recordings keep AV1 and Opus as they came in (Enhanced RTMP), not only H.264/AAC."""

from __future__ import annotations

import pytest

from server.bus.items import BusItem, ConfigChange, EndOfStream
from server.media.flv import FlvTagParser
from server.media.frame import CodecConfig, Frame
from server.record.muxer import NewFile, RecordMuxer
from tests.unit.media.avsource import decode_all
from tests.unit.media.vectors import encode_flv, has_codec, iter_flv_tags


def _items(flv: bytes) -> list[BusItem]:
    """What ingest would publish for an FLV file: configs and frames in tag order."""
    parser = FlvTagParser()
    items: list[BusItem] = []
    for kind, timestamp, body in iter_flv_tags(flv):
        parsed = parser.video(body, timestamp) if kind == 9 else parser.audio(body, timestamp)
        if isinstance(parsed, CodecConfig):
            items.append(ConfigChange(parsed))
        elif isinstance(parsed, Frame):
            items.append(parsed)
    return items


@pytest.mark.skipif(
    not (has_codec("libsvtav1") and has_codec("libopus")),
    reason="PyAV build without SVT-AV1 or libopus",
)
def test_av1_and_opus_are_recorded_as_they_came() -> None:
    flv = encode_flv("libsvtav1", 320, 240, 20, "libopus", (("preset", "12"),), "stereo")
    muxer = RecordMuxer(90_000, 0)
    out = [o for item in [*_items(flv), EndOfStream()] for o in muxer.feed(item)]
    data = b"".join(o.init if isinstance(o, NewFile) else b"".join(o) for o in out)
    got = decode_all(data)
    assert got["errors"] == []
    assert got["video"]["codec"] in ("av1", "libdav1d") and got["audio"]["codec"] == "opus"
    assert got["decoded"]["video"] == 20 and got["decoded"]["audio"] >= 6
