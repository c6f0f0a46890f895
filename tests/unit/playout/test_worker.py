"""The playout worker in this process, on small files written with PyAV: what it sends
the event loop, in order (its pipe replaced by a list)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest

from server.media.frame import Frame, TrackKind
from server.playout import worker as worker_module
from server.playout.messages import Batch, Configs, Ended, Finish, Play, Started
from server.playout.ports import Profile
from server.playout.worker import _Worker, decode_threads, in_band
from tests.unit.encode.media import picture, tone

PROFILE = Profile(160, 90, 25, 200_000, 64_000)


class Pipe:
    def __init__(self) -> None:
        self.sent: list[object] = []

    def send(self, message: object) -> None:
        self.sent.append(message)

    def poll(self) -> bool:
        return False


def _write(
    path: Path,
    seconds: float,
    fps: int,
    audio: bool,
    size: tuple[int, int] = (320, 240),
    rate: int = 48_000,
    layout: str = "stereo",
) -> Path:
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = *size, "yuv420p"
        video.options = {"preset": "ultrafast"}
        sound = out.add_stream("aac", rate=rate) if audio else None
        if sound is not None:
            sound.codec_context.layout = layout
        for i in range(int(seconds * fps)):
            frame = picture(*size, 40 + i % 200)
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            for n in range(int(seconds * rate / 1024)):
                chunk = tone(1024, rate, layout, start=n * 1024)
                chunk.pts, chunk.time_base = n * 1024, Fraction(1, rate)
                out.mux(sound.encode(chunk))
            out.mux(sound.encode(None))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("items")
    broken = root / "broken.mp4"
    broken.write_bytes(b"not a video" * 50)
    return _write(root / "a.mp4", 1.0, 30, True), broken, _write(root / "b.mp4", 1.0, 24, False)


def _play(
    files: tuple[Path, ...],
    ids: tuple[str, ...] = ("qi_a", "qi_x", "qi_b"),
    starts: tuple[float, ...] | None = None,
) -> list[object]:
    pipe = Pipe()
    worker = _Worker(pipe, PROFILE, "libx264", "veryfast")  # type: ignore[arg-type]
    starts = starts or (0.0,) * len(files)
    for index, (item_id, path, start) in enumerate(zip(ids, files, starts, strict=True)):
        assert worker.play(Play(0, item_id, str(path), start, fresh=index == 0)) is None
    worker.finish(Finish(0))
    out: list[object] = []
    for message in pipe.sent:
        out += message.frames if isinstance(message, Batch) else [message]
    return out


def test_an_item_is_announced_at_its_first_picture(files: tuple[Path, Path, Path]) -> None:
    """The encoder still holds the end of one item when the next is opened: its
    ``Started`` goes out between the two, not before the previous item's last frames."""
    out = _play(files)
    starts = [i for i, m in enumerate(out) if isinstance(m, Started)]
    assert [out[i].item_id for i in starts] == ["qi_a", "qi_b"]  # type: ignore[attr-defined]
    second: Started = out[starts[1]]  # type: ignore[assignment]
    video = [
        (i, m.pts) for i, m in enumerate(out) if isinstance(m, Frame) and m.track is TrackKind.VIDEO
    ]
    assert all(pts < second.video_pts for i, pts in video if i < starts[1])
    assert all(pts >= second.video_pts for i, pts in video if i > starts[1])
    assert starts[0] < video[0][0], "the first item is announced before its first picture"


def test_output_is_in_timestamp_order_and_the_broken_item_is_only_ended(
    files: tuple[Path, Path, Path],
) -> None:
    out = _play(files)
    frames = [m for m in out if isinstance(m, Frame)]
    assert [f.pts for f in frames] == sorted(f.pts for f in frames)
    ended = {m.item_id: m.error for m in out if isinstance(m, Ended)}
    assert ended["qi_a"] is None and ended["qi_b"] is None and ended["qi_x"]
    video = [f for f in frames if f.track is TrackKind.VIDEO]
    assert len(video) == 25 + 25  # one second each at the profile's 25 fps


def test_an_item_that_is_the_profile_is_remuxed_between_conformed_ones(
    files: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """Its packets go out byte for byte on the channel's timeline, under its own codec
    config; the encoders' config comes back for the next conformed item."""
    same = _write(tmp_path / "same.mp4", 1.0, PROFILE.fps, True, (PROFILE.width, PROFILE.height))
    with av.open(str(same)) as container:
        packets = {bytes(p) for p in container.demux(container.streams.video[0]) if p.size}
    out = _play((files[0], same, files[2]), ("qi_a", "qi_same", "qi_b"))
    configs = [m for m in out if isinstance(m, Configs)]
    assert len(configs) == 3 and configs[0] == configs[2] != configs[1]
    assert configs[1].video.width == PROFILE.width and configs[1].video.fps == PROFILE.fps
    at = [i for i, m in enumerate(out) if isinstance(m, Configs)]
    remuxed = [m for m in out[at[1] : at[2]] if isinstance(m, Frame)]
    video = [f for f in remuxed if f.track is TrackKind.VIDEO]
    prefix = in_band(configs[1].video)  # keyframes carry the item's SPS/PPS in band
    assert video[0].keyframe and video[0].payload.startswith(prefix)
    payloads = {f.payload[len(prefix) :] if f.keyframe else f.payload for f in video}
    assert payloads == packets and len(video) == PROFILE.fps
    frames = [m for m in out if isinstance(m, Frame)]
    for track in TrackKind.VIDEO, TrackKind.AUDIO:
        pts = [f.pts for f in frames if f.track is track]
        assert pts == sorted(pts) and len(set(pts)) == len(pts), track
    assert [m.item_id for m in out if isinstance(m, Started)] == ["qi_a", "qi_same", "qi_b"]


def _loud(payloads: list[bytes], asc: bytes) -> list[bool]:
    """Per AAC packet: does it decode to the tone (not silence)? Decoded frame ``i``
    is taken as packet ``i``'s audio (the encoder's priming shifts it 21 ms late)."""
    decoder = av.CodecContext.create("aac", "r")
    decoder.extradata = asc
    levels: list[float] = []
    for payload in [*payloads, b""]:
        for frame in decoder.decode(av.Packet(payload) if payload else None):
            samples = frame.to_ndarray()
            levels.append(float((samples.astype("float64") ** 2).mean() ** 0.5))
    return [level > 0.02 for level in levels[: len(payloads)]]


def test_audio_stays_in_sync_and_continuous_across_items_formats_and_a_resume(
    tmp_path: Path,
) -> None:
    """48 kHz stereo (fed to the encoder as decoded), no audio (silence), 44.1 kHz mono
    (through the resampler), then the first item resumed 0.4 s in: the output's audio
    is one frame every 1920 ticks from start to end, the tone stops where the silent
    item's first picture is shown and starts again at the mono item's, each within one
    video frame plus one AAC frame, and the end of the audio is level with the video."""
    stereo = _write(tmp_path / "stereo.mp4", 1.0, 30, True)
    silent = _write(tmp_path / "silent.mp4", 1.0, 24, False)
    mono = _write(tmp_path / "mono.mp4", 1.0, 25, True, (176, 144), 44_100, "mono")
    ids = ("qi_st", "qi_si", "qi_mo", "qi_re")
    out = _play((stereo, silent, mono, stereo), ids, (0.0, 0.0, 0.0, 0.4))
    configs = next(m for m in out if isinstance(m, Configs))
    starts = {m.item_id: m.video_pts for m in out if isinstance(m, Started)}
    assert list(starts) == list(ids)
    audio = [m for m in out if isinstance(m, Frame) and m.track is TrackKind.AUDIO]
    video = [m for m in out if isinstance(m, Frame) and m.track is TrackKind.VIDEO]
    assert [f.pts for f in audio] == [k * 1920 for k in range(len(audio))]
    assert [f.pts for f in video] == [k * 3600 for k in range(len(video))]
    assert len(video) == 25 + 25 + 25 + 15  # the resumed item: its last 0.6 s
    loud = _loud([f.payload for f in audio], configs.audio.extradata)
    pts = [f.pts for f in audio]

    def change(after: int, to: bool) -> int:
        return next(p for p, is_loud in zip(pts, loud, strict=True) if p >= after and is_loud is to)

    tolerance = 3600 + 1920 + 1920  # a video frame, the AAC priming, a packet's grain
    assert loud[5] and loud[30], "the stereo item's tone"
    assert abs(change(starts["qi_st"] + tolerance, False) - starts["qi_si"]) <= tolerance, loud
    assert abs(change(starts["qi_si"] + tolerance, True) - starts["qi_mo"]) <= tolerance, loud
    assert all(
        loud[pts.index(p)] for p in pts if starts["qi_mo"] + tolerance <= p < starts["qi_re"]
    )
    end = video[-1].pts + 3600
    assert all(
        loud[pts.index(p)] for p in pts if starts["qi_re"] + tolerance <= p < end - tolerance
    )
    assert 0 <= audio[-1].pts + 1920 - end < 1920 + 1920  # level (plus the flushed priming)


def test_decoder_threads_frame_threads_only_above_1080p() -> None:
    assert decode_threads(1280, 720) == decode_threads(1920, 1080) == "SLICE"
    assert decode_threads(3840, 2160) == decode_threads(2560, 1440) == "AUTO"


def test_one_decoder_thread_or_frame_threads_give_the_same_output(
    files: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Up to 1080p an item is decoded without frame threads (less CPU in real time);
    the pictures, so the channel's output, are the same either way."""
    one = [(m.track, m.pts, m.payload) for m in _play(files) if isinstance(m, Frame)]
    monkeypatch.setattr(worker_module, "FRAME_THREADS_ABOVE", 0)
    threaded = [(m.track, m.pts, m.payload) for m in _play(files) if isinstance(m, Frame)]
    assert one == threaded and len(one) > 50
