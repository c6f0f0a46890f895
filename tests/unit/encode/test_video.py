from fractions import Fraction

import av
import pytest
from av.video.reformatter import VideoReformatter

from server.encode import VideoEncoder, VideoProfile, encoder_available
from server.encode import video as video_module
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
    # the SPS timing says 90 kHz (the time base); the frame rate is the profile's
    assert encoder.config.fps == 30
    assert encoder.config.codec == "h264"
    frames = _encode(encoder, 12, set())
    assert len(frames) == 12
    assert all(f.dts == f.pts for f in frames), "no B-frames: decode order is display order"
    assert [f.pts for f in frames] == [i * STEP for i in range(12)]
    for f in frames:
        assert split_length_prefixed(f.payload), "payload is 4-byte length-prefixed NAL units"


@pytest.mark.parametrize("fps", [25, 30, 60])
def test_config_frame_rate_is_the_profiles(fps: int) -> None:
    """The SPS timing of a 90 kHz encoder says 90000 fps; ingest's plan check read that
    and refused every channel ("frame rate 90000 exceeds the plan's 60")."""
    profile = VideoProfile(width=320, height=240, fps=Fraction(fps), bitrate=400_000)
    assert VideoEncoder(profile).config.fps == fps


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


def test_scaling_keeps_one_scaler_for_every_picture(monkeypatch: pytest.MonkeyPatch) -> None:
    """``VideoFrame.reformat`` keeps its scaler on the picture, so a new SwsContext (and
    a thread pool) was built for every decoded picture and rung: about 1 ms at 720p,
    several times the scaling itself, and the 15 % the ABR bench had over ffmpeg. Counted,
    not timed: one reformatter for the encoder's life, used for every picture."""

    class CountingReformatter:
        def __init__(self) -> None:
            self.real = VideoReformatter()
            self.calls = 0

        def reformat(self, *args: object, **kwargs: object) -> av.VideoFrame:
            self.calls += 1
            return self.real.reformat(*args, **kwargs)

    made: list[CountingReformatter] = []

    def factory() -> CountingReformatter:
        made.append(CountingReformatter())
        return made[-1]

    monkeypatch.setattr(video_module, "VideoReformatter", factory)
    encoder = VideoEncoder(VideoProfile(width=640, height=360, fps=Fraction(30), bitrate=800_000))
    for i in range(5):
        scaled = encoder.scale(picture(1280, 720, 60 + i))
        assert (scaled.width, scaled.height, scaled.format.name) == (640, 360, "yuv420p")
    assert [r.calls for r in made] == [5]


def test_x264_uses_frame_threads_like_the_ffmpeg_command_line() -> None:
    """PyAV's default slice threading made x264 cut pictures into slices
    (sliced_threads=1): not the encoding the bench's ffmpeg reference does."""
    frames = _encode(VideoEncoder(PROFILE), 2, set())
    settings = frames[0].payload.split(b"options: ", 1)[1].split(b"\x00", 1)[0].decode()
    options = dict(item.split("=", 1) for item in settings.split())
    assert options["sliced_threads"] == "0"
    assert "slices" not in options
    assert (options["bframes"], options["keyint"], options["scenecut"]) == ("0", "300", "0")
