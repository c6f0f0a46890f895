"""The worker's pipeline in-process (no pipe, no process): real H.264 with B-frames and
AAC in, every rung's keyframes exactly at the source's, decimation on the source's
timestamps, AAC passed through once the video has caught up."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import av

from server.media import opus
from server.media.frame import TIMEBASE, Codec, CodecConfig, Frame, TrackKind
from server.settings import Rung
from server.transcode.ladder import select
from server.transcode.messages import AUDIO, Job
from server.transcode.pipeline import Pipeline
from tests.unit.encode.media import tone
from tests.unit.media.avsource import AUDIO_RATE, FPS, HEIGHT, WIDTH, interleave, media

RUNGS = (
    Rung(name="full", height=HEIGHT, video_bitrate=300_000, max_fps=60),
    Rung(name="small", height=90, video_bitrate=100_000, max_fps=15),
)


def _run(gop: int) -> tuple[list[Frame], dict[int, list[Frame]], list[Frame]]:
    """Source frames, what each rung output, and the audio released (in order)."""
    source = media(seconds=3, gop=gop, bframes=2)
    assert source.video is not None and source.audio is not None
    renditions = tuple(select(RUNGS, WIDTH, HEIGHT, FPS))
    pipeline = Pipeline(Job(renditions, source.video, source.audio, "libx264", "veryfast", 128_000))
    out: dict[int, list[Frame]] = {0: [], 1: []}
    audio: list[Frame] = []
    for frame in source.frames:
        batch = pipeline.feed(frame)
        released, keys = [], []
        for index, produced in batch.frames:
            if index == AUDIO:
                # ahead of any keyframe that plays after it: a rung's segmenter puts
                # audio in the part its time falls in, and one arriving after the cut
                # would land in the rung's next segment, not the source's
                assert all(k.dts <= produced.pts for k in keys), (keys, produced)
                released.append(produced)
            else:
                out[index].append(produced)
                if produced.keyframe:
                    keys.append(produced)
        # released once every rung's video has been output up to it, or ahead of a cut
        for a in released:
            assert any(k.dts > a.pts for k in keys) or all(
                out[i] and out[i][-1].pts >= a.pts for i in out
            ), a
        audio.extend(released)
    return list(source.frames), out, audio


def test_keyframes_land_on_the_sources_and_nowhere_else() -> None:
    source, out, _ = _run(gop=20)  # not the encoders' own GOP: only forcing explains it
    keys = {f.pts for f in source if f.track is TrackKind.VIDEO and f.keyframe}
    for frames in out.values():
        assert len(frames) > 25  # 15 fps rung: 45 pictures kept, the last in the look-ahead
        assert all(f.dts == f.pts for f in frames)
        shown = max(f.pts for f in frames)
        assert {f.pts for f in frames if f.keyframe} == {k for k in keys if k <= shown}


def test_a_lower_frame_rate_keeps_every_other_source_picture() -> None:
    source, out, _ = _run(gop=30)
    pictures = sorted(f.pts for f in source if f.track is TrackKind.VIDEO)
    full, small = [f.pts for f in out[0]], [f.pts for f in out[1]]
    assert full == pictures[: len(full)]  # 30 fps: every picture, its own timestamp
    assert small == pictures[: 2 * len(small) : 2]  # 15 fps: every other one
    assert len(small) > 20


def test_aac_is_passed_through_untouched() -> None:
    source, _, audio = _run(gop=30)
    original = [f for f in source if f.track is TrackKind.AUDIO]
    assert len(audio) > 50
    assert [f.payload for f in audio] == [f.payload for f in original[: len(audio)]]
    assert [f.pts for f in audio] == [f.pts for f in original[: len(audio)]]


def _opus(seconds: float) -> tuple[CodecConfig, list[Frame]]:
    """A 48 kHz stereo tone as Opus, the way an Enhanced RTMP or WebRTC source brings it."""
    ctx = av.CodecContext.create("libopus", "w")
    assert isinstance(ctx, av.AudioCodecContext)
    ctx.sample_rate, ctx.layout, ctx.format = AUDIO_RATE, "stereo", "s16"
    ctx.time_base = Fraction(1, AUDIO_RATE)
    ctx.open()
    size = ctx.frame_size
    packets = []
    for i in range(math.ceil(seconds * AUDIO_RATE / size)):
        frame = tone(size, AUDIO_RATE, "stereo", start=i * size)
        frame.pts = i * size
        packets += ctx.encode(frame)
    frames = []
    for packet in packets:
        assert packet.pts is not None
        ticks = packet.pts * TIMEBASE // AUDIO_RATE
        frames.append(Frame(TrackKind.AUDIO, Codec.OPUS, ticks, ticks, True, bytes(packet)))
    return opus.config_from_opus_head(bytes(ctx.extradata or b"")), frames


def test_other_audio_is_encoded_to_aac_once_for_every_rung() -> None:
    video = media(seconds=3, audio=False)
    assert video.video is not None
    config, sound = _opus(3)
    renditions = tuple(select(RUNGS, WIDTH, HEIGHT, FPS))
    pipeline = Pipeline(Job(renditions, video.video, config, "libx264", "veryfast", 96_000))
    audio_config = pipeline.audio_config
    assert audio_config is not None and audio_config.codec == Codec.AAC
    released = []
    for frame in interleave(video.frames, sound):
        released += [f for index, f in pipeline.feed(frame).frames if index == AUDIO]
    assert len(released) > 80  # 1024-sample AAC frames: ~47 a second
    assert all(f.codec == Codec.AAC for f in released)
    steps = {b.pts - a.pts for a, b in itertools.pairwise(released)}
    assert steps == {1024 * TIMEBASE // AUDIO_RATE}  # one continuous track, not per rung
