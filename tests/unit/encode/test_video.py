from fractions import Fraction

import av
import pytest

from server.encode import VideoEncoder, VideoProfile, encoder_available
from server.media.frame import Frame
from server.media.nal import split_length_prefixed
from tests.unit.encode.media import picture

PROFILE = VideoProfile(width=320, height=240, fps=Fraction(30), bitrate=400_000, keyint_seconds=10)
STEP = 3000  # ticks per frame at 30 fps


def _encode(encoder: VideoEncoder, count: int, forced: set[int]) -> list[Frame]:
    out: list[Frame] = []
    for i in range(count):
        out += encoder.encode(picture(640, 480, 60 + i), i * STEP, keyframe=i in forced)
    return out + encoder.flush()


def test_config_is_the_profile_size_and_frames_are_avcc() -> None:
    encoder = VideoEncoder(PROFILE)
    assert (encoder.config.width, encoder.config.height) == (320, 240)
    assert encoder.config.codec == "h264"
    frames = _encode(encoder, 12, set())
    assert len(frames) == 12
    assert all(f.dts == f.pts for f in frames), "no B-frames: decode order is display order"
    assert [f.pts for f in frames] == [i * STEP for i in range(12)]
    for f in frames:
        assert split_length_prefixed(f.payload), "payload is 4-byte length-prefixed NAL units"


def test_keyframes_only_where_forced_and_at_start() -> None:
    frames = _encode(VideoEncoder(PROFILE), 20, {7, 15})
    assert [i for i, f in enumerate(frames) if f.keyframe] == [0, 7, 15]


def test_output_decodes_at_the_profile_size() -> None:
    encoder = VideoEncoder(PROFILE)
    frames = _encode(encoder, 5, set())
    decoder = av.CodecContext.create("h264", "r")
    decoder.extradata = encoder.config.extradata
    pictures = []
    for f in frames:
        pictures += decoder.decode(av.Packet(f.payload))
    pictures += decoder.decode(None)
    assert [(p.width, p.height) for p in pictures] == [(320, 240)] * 5


def test_encoder_available() -> None:
    assert encoder_available("libx264")
    assert not encoder_available("no_such_encoder")
    assert not encoder_available("aac"), "an audio encoder is not a video encoder"


@pytest.mark.parametrize("size", [(0, 240), (321, 240)])
def test_profile_refuses_odd_or_empty_sizes(size: tuple[int, int]) -> None:
    with pytest.raises(ValueError):
        VideoProfile(width=size[0], height=size[1], fps=Fraction(30), bitrate=1)
