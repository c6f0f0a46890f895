"""Channels end to end: generated library items, a channel made of them, and what its
HLS output looks like when read back with PyAV (a real demuxer and decoder)."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av

from tests.conftest import require_program
from tests.interop.conftest import Api, Relaycast, wait_for
from tests.interop.uploads import tus_upload

PROFILE = {"width": 320, "height": 180, "fps": 25, "videoBitrate": 400_000}
FRAME = 1 / 25


@contextlib.contextmanager
def server_log_on_failure(relaycast: Relaycast) -> Iterator[None]:
    """A failing step prints the server's recent playout and ingest lines (pytest shows
    them with the failure): timing failures are otherwise hard to read."""
    try:
        yield
    except BaseException:
        lines = relaycast.log().splitlines()
        print("\n".join(line for line in lines if "relaycast." in line)[-6000:])
        raise


def make_item(path: Path, size: str, rate: int, seconds: float, audio: str | None) -> Path:
    """A short H.264 file (test pattern), with AAC of the given layout or no audio.
    ``audio`` is ``"RATE:LAYOUT"`` e.g. ``"44100:mono"``."""
    cmd = [require_program("ffmpeg"), "-v", "error", "-y"]
    cmd += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}"]
    if audio is not None:
        sample_rate, layout = audio.split(":")
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={sample_rate}"]
        cmd += ["-ac", "1" if layout == "mono" else "2", "-c:a", "aac"]
    cmd += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    cmd += ["-t", str(seconds), str(path)]
    subprocess.run(cmd, check=True, timeout=60)
    return path


def three_items(root: Path, seconds: float = 3.0) -> list[Path]:
    """Different sizes, frame rates and audio layouts; the last has no audio."""
    return [
        make_item(root / "a.mp4", "640x360", 30, seconds, "48000:stereo"),
        make_item(root / "b.mp4", "400x300", 24, seconds, "44100:mono"),
        make_item(root / "c.mp4", "256x144", 15, seconds, None),
    ]


def upload(api: Api, path: Path) -> str:
    """One tus upload of the whole file; waits until it is ready."""
    media_id = tus_upload(api, path)
    wait_for(
        lambda: api.ok("GET", f"/v1/media/{media_id}")["status"],
        lambda status: status == "ready",
        30,
        f"media {media_id} to be ready",
    )
    return media_id


def make_channel(api: Api, media_ids: list[str], **fields: Any) -> dict[str, Any]:
    stream = api.create_stream(
        "channel", source="queue", profile=PROFILE, playbackPolicy="public", **fields
    )
    for media_id in media_ids:
        api.ok("POST", f"/v1/live-streams/{stream['streamId']}/queue", {"mediaId": media_id}, 201)
    return stream


def now_playing(api: Api, stream_id: str) -> dict[str, Any] | None:
    got: dict[str, Any] | None = api.ok("GET", f"/v1/live-streams/{stream_id}/queue")["nowPlaying"]
    return got


@dataclass
class Watched:
    """What a viewer got over HLS: packet timestamps (seconds) and picture sizes."""

    video: list[float] = field(default_factory=list)
    audio: list[float] = field(default_factory=list)
    sizes: set[tuple[int, int]] = field(default_factory=set)

    def video_gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.video, self.video[1:], strict=False)]

    def audio_gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.audio, self.audio[1:], strict=False)]


def watch(url: str, seconds: float) -> Watched:
    """Read ``seconds`` of the live HLS output (from where a player would start),
    decoding the video to see its size."""
    seen = Watched()
    deadline = time.monotonic() + seconds + 30
    with av.open(url, timeout=20, options={"live_start_index": "0"}) as container:
        video_stream = container.streams.video[0]
        audio_stream = container.streams.audio[0]
        for packet in container.demux(video_stream, audio_stream):
            if packet.pts is None or packet.time_base is None:
                continue
            t = float(packet.pts * packet.time_base)
            if packet.stream is video_stream:
                seen.video.append(t)
                for frame in packet.decode():
                    seen.sizes.add((frame.width, frame.height))
            else:
                seen.audio.append(t)
            if seen.video and seen.video[-1] - seen.video[0] >= seconds:
                break
            if time.monotonic() > deadline:
                break
    return seen
