from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.media import opus
from server.media.errors import MediaFormatError
from server.media.flv import parse_audio_tag
from server.media.frame import CodecConfig

from .vectors import encode_flv, has_codec, iter_flv_tags


@pytest.mark.skipif(not has_codec("libopus"), reason="PyAV build without libopus")
@pytest.mark.parametrize(("layout", "channels"), [("mono", 1), ("stereo", 2)])
def test_opus_head_from_ffmpeg_flv(layout: str, channels: int) -> None:
    data = encode_flv(None, acodec="libopus", channels=layout)
    body = next(b for t, _, b in iter_flv_tags(data) if t == 8)
    assert body[:5] == b"\x90Opus"
    head = opus.parse_opus_head(body[5:])
    assert head.channels == channels and head.pre_skip > 0
    assert opus.build_opus_head(head) == body[5:]
    config = parse_audio_tag(body, 0)
    assert isinstance(config, CodecConfig)
    assert (config.codec, config.sample_rate, config.channels) == ("opus", 48000, channels)


def test_dops_round_trip_and_conversion() -> None:
    head = opus.OpusHeader(2, 312, 44100, -3, 0, stream_count=1, coupled_count=1)
    dops = opus.build_dops(head)
    assert dops == bytes.fromhex("0002013800 00ac44 fffd 00".replace(" ", ""))
    assert opus.parse_dops(dops) == head
    assert opus.parse_opus_head(opus.build_opus_head(head)) == head


def test_multichannel_mapping() -> None:
    head = opus.OpusHeader(6, 312, 48000, 0, 1, 4, 2, bytes([0, 4, 1, 2, 3, 5]))
    assert opus.parse_opus_head(opus.build_opus_head(head)) == head
    assert opus.parse_dops(opus.build_dops(head)) == head


def test_empty_sequence_start_means_stereo() -> None:
    assert opus.config_from_opus_head(b"").channels == 2


@given(st.binary(max_size=40))
def test_fuzz_only_format_errors(data: bytes) -> None:
    for parse in (opus.parse_opus_head, opus.parse_dops):
        with contextlib.suppress(MediaFormatError):
            parse(b"OpusHead" + data if parse is opus.parse_opus_head else data)
