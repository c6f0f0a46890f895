"""Files for the VOD tests, made with the ffmpeg program (a real peer), and small readers."""

from __future__ import annotations

import asyncio
import subprocess
from io import BytesIO
from pathlib import Path
from typing import Any

import av

from tests.api.conftest import Api
from tests.api.tus_helpers import upload, wait_media
from tests.conftest import require_program

TESTSRC = ["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25"]
SINE = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-keyint_min", "50"]
H264 += ["-sc_threshold", "0", "-pix_fmt", "yuv420p"]


def ffmpeg(out: Path, *args: str, seconds: float = 10) -> Path:
    """``seconds`` of test pattern (and tone) with a keyframe every 2 s."""
    program = require_program("ffmpeg")
    command = [program, "-v", "error", "-y", *args, "-t", str(seconds), str(out)]
    subprocess.run(command, check=True, timeout=120)
    return out


def make_files(root: Path) -> dict[str, Path]:
    return {
        "av": ffmpeg(root / "av.mp4", *TESTSRC, *SINE, *H264, "-c:a", "aac"),
        "video": ffmpeg(root / "video.mp4", *TESTSRC, *H264, "-bf", "2"),
        # what recordings are: fragmented MP4 (moov without samples, then moof+mdat)
        "fragmented": ffmpeg(
            root / "frag.mp4",
            *TESTSRC,
            *SINE,
            *H264,
            "-c:a",
            "aac",
            "-movflags",
            "frag_keyframe+empty_moov+default_base_moof",
        ),
        "mkv": ffmpeg(root / "av.mkv", *TESTSRC, *SINE, *H264, "-c:a", "aac", seconds=4),
        "ts": ffmpeg(root / "av.ts", *TESTSRC, *SINE, *H264, "-c:a", "aac", seconds=4),
        "mpeg2": ffmpeg(root / "m2.ts", *TESTSRC, "-c:v", "mpeg2video", seconds=2),
    }


async def ready_item(api: Api, path: Path, policy: str = "public") -> dict[str, Any]:
    media_id = await upload(api, await asyncio.to_thread(path.read_bytes), path.name)
    item = await wait_media(api, media_id)
    assert item["status"] == "ready", item
    reply = await api.call("PATCH", f"/v1/media/{media_id}", body={"playbackPolicy": policy})
    assert reply.status == 200, reply.text
    return dict(reply.json)


async def get(api: Api, url: str, **headers: str) -> tuple[int, Any, bytes]:
    async with api.http.get(url, headers=headers) as resp:
        return resp.status, resp.headers, await resp.read()


def playlist_uris(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def first_video_packet_is_keyframe(init: bytes, segment: bytes) -> bool:
    with av.open(BytesIO(init + segment), format="mp4") as container:
        if not container.streams.video:
            return True
        for packet in container.demux(video=0):
            if packet.size:
                return bool(packet.is_keyframe)
    return False


def decoded_frames(url: str) -> dict[str, int]:
    """Frames PyAV decodes from ``url`` per kind of track."""
    counts = {"video": 0, "audio": 0}
    with av.open(url, options={"protocol_whitelist": "http,tcp,file,crypto"}) as container:
        streams = [s for s in container.streams if s.type in counts]
        for frame in container.decode(*streams):
            kind = "video" if isinstance(frame, av.VideoFrame) else "audio"
            counts[kind] += 1
    return counts
