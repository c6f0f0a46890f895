"""The playout worker in this process, on small files written with PyAV: what it sends
the event loop, in order (its pipe replaced by a list)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest

from server.media.frame import Frame, TrackKind
from server.playout.messages import Batch, Configs, Ended, Finish, Play, Started
from server.playout.ports import Profile
from server.playout.worker import _Worker, in_band
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
    path: Path, seconds: float, fps: int, audio: bool, size: tuple[int, int] = (320, 240)
) -> Path:
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = *size, "yuv420p"
        video.options = {"preset": "ultrafast"}
        sound = out.add_stream("aac", rate=48_000) if audio else None
        for i in range(int(seconds * fps)):
            frame = picture(*size, 40 + i % 200)
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            for n in range(int(seconds * 48_000 / 1024)):
                chunk = tone(1024, 48_000, "stereo", start=n * 1024)
                chunk.pts, chunk.time_base = n * 1024, Fraction(1, 48_000)
                out.mux(sound.encode(chunk))
            out.mux(sound.encode(None))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("items")
    broken = root / "broken.mp4"
    broken.write_bytes(b"not a video" * 50)
    return _write(root / "a.mp4", 1.0, 30, True), broken, _write(root / "b.mp4", 1.0, 24, False)


def _play(files: tuple[Path, ...], ids: tuple[str, ...] = ("qi_a", "qi_x", "qi_b")) -> list[object]:
    pipe = Pipe()
    worker = _Worker(pipe, PROFILE, "libx264", "veryfast")  # type: ignore[arg-type]
    for index, (item_id, path) in enumerate(zip(ids, files, strict=True)):
        assert worker.play(Play(0, item_id, str(path), 0.0, fresh=index == 0)) is None
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
