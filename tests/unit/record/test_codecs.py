"""Recordings keep AV1 and Opus as they came in (Enhanced RTMP), not only H.264/AAC."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from server.bus import Stream, StreamGrant
from server.bus.items import BusItem, ConfigChange, EndOfStream
from server.hls.packager import HlsService
from server.media.flv import FlvTagParser
from server.media.frame import CodecConfig, Frame
from server.record.muxer import NewFile, RecordMuxer
from server.record.service import RecordService
from server.settings import HlsSettings, RecordSettings
from tests.unit.media.avsource import decode_all
from tests.unit.media.vectors import encode_flv, has_codec, iter_flv_tags
from tests.unit.record.test_recorder import Catalog


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


AV1_OPUS = pytest.mark.skipif(
    not (has_codec("libsvtav1") and has_codec("libopus")),
    reason="PyAV build without SVT-AV1 or libopus",
)


@AV1_OPUS
def test_av1_and_opus_are_recorded_as_they_came() -> None:
    flv = encode_flv("libsvtav1", 320, 240, 20, "libopus", (("preset", "12"),), "stereo")
    muxer = RecordMuxer(90_000, 0)
    out = [o for item in [*_items(flv), EndOfStream()] for o in muxer.feed(item)]
    data = b"".join(o.init if isinstance(o, NewFile) else b"".join(o) for o in out)
    got = decode_all(data)
    assert got["errors"] == []
    assert got["video"]["codec"] in ("av1", "libdav1d") and got["audio"]["codec"] == "opus"
    assert got["decoded"]["video"] == 20 and got["decoded"]["audio"] >= 6


@AV1_OPUS
async def test_codecs_hls_leaves_out_are_recorded_next_to_hls(tmp_path: Path) -> None:
    """The recorder copies HLS where it can; AV1 and Opus it muxes itself."""
    flv = encode_flv("libsvtav1", 320, 240, 20, "libopus", (("preset", "12"),), "stereo")
    catalog = Catalog()
    hls = HlsService(HlsSettings())
    service = RecordService(
        tmp_path, RecordSettings(min_free_bytes=0), catalog, segmenters=hls.live_segmenter
    )
    stream = Stream("st_1")
    grant = StreamGrant("st_1", "env_1", True, 2, recording=True)
    hls.stream_opened(grant, stream, "ses_1")
    service.stream_opened(grant, stream, "ses_1")
    for item in _items(flv):
        if isinstance(item, ConfigChange):
            stream.set_config(item.config)
        elif isinstance(item, Frame):
            stream.publish(item)
        await asyncio.sleep(0)
    stream.end("done")
    await service.close()
    await hls.close()
    [done] = catalog.finished
    got = decode_all(b"".join(p.read_bytes() for p in done.parts))
    assert got["errors"] == []
    assert got["video"]["codec"] in ("av1", "libdav1d") and got["audio"]["codec"] == "opus"
    assert got["decoded"]["video"] == 20
