"""What the segmenter publishes, read back by FFmpeg: decoded segments and ffprobe on the
playlist directory (ffmpeg's HLS demuxer plays whole segments; it ignores parts)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from server.hls import Segmenter
from server.hls.playlist import segment_extension
from server.media.frame import TrackKind
from tests.conftest import require_program
from tests.unit.media.avsource import Media, decode_all, has_encoder, media

from .helpers import feed, start


def packaged(m: Media, **settings: object) -> Segmenter:
    seg = start(m, window_segments=10, **settings)
    feed(seg, m.frames)
    seg.on_end()
    return seg


def whole_file(seg: Segmenter) -> bytes:
    """init (if any) + every segment, as one file."""
    msns = range(seg.edge().last_msn + 1)
    return (seg.init_segment(0) or b"") + b"".join(seg.segment(n) or b"" for n in msns)


@pytest.mark.parametrize(
    ("segment_format", "options"),
    [
        ("fmp4", {}),
        ("fmp4", {"chunked_parts": False}),
        ("fmp4", {"low_latency": False}),
        ("ts", {}),
    ],
)
def test_segments_decode_without_error(segment_format: str, options: dict[str, object]) -> None:
    m = media()
    seg = packaged(m, segment_format=segment_format, **options)
    result = decode_all(whole_file(seg), "mpegts" if segment_format == "ts" else None)
    assert result["errors"] == []
    assert (result["video"]["width"], result["video"]["height"]) == (320, 180)
    assert result["decoded"]["video"] == len(m.track(TrackKind.VIDEO))
    assert result["decoded"]["audio"] >= len(m.track(TrackKind.AUDIO)) - 1  # priming frame
    for kind in ("video", "audio"):
        pts = result["pts"][kind]
        assert pts == sorted(pts)


def test_parts_alone_decode_without_error() -> None:
    m = media()
    seg = packaged(m)
    parts = []
    for msn in range(seg.edge().last_msn + 1):
        index = 0
        while (buffer := seg.part(msn, index)) is not None:
            parts.append(bytes(buffer.data))
            index += 1
    assert len(parts) >= 8
    result = decode_all((seg.init_segment(0) or b"") + b"".join(parts))
    assert result["errors"] == [] and result["decoded"]["video"] == len(m.track(TrackKind.VIDEO))


@pytest.mark.skipif(not has_encoder("libx265"), reason="libx265 not in this FFmpeg build")
def test_hevc_segments_decode() -> None:
    m = media(video="libx265", seconds=3)
    result = decode_all(whole_file(packaged(m)))
    assert result["errors"] == [] and result["video"]["codec"] == "hevc"
    assert result["decoded"]["video"] == len(m.track(TrackKind.VIDEO))


def write_directory(seg: Segmenter, directory: Path) -> Path:
    playlist = directory / "media.m3u8"
    playlist.write_text(seg.media_playlist() or "")
    view = seg.media_view()
    assert view is not None
    for line in view.segments:
        name = f"seg{line.msn}.{segment_extension(line)}"
        (directory / name).write_bytes(seg.segment(line.msn) or b"")
        if line.init_version is not None:
            (directory / f"init{line.init_version}.mp4").write_bytes(
                seg.init_segment(line.init_version) or b""
            )
    (directory / "master.m3u8").write_text(seg.master_playlist() or "")
    return playlist


@pytest.mark.parametrize("segment_format", ["fmp4", "ts"])
def test_ffprobe_reads_the_playlist(segment_format: str, tmp_path: Path) -> None:
    ffprobe = require_program("ffprobe")
    seg = packaged(media(), segment_format=segment_format)
    write_directory(seg, tmp_path)
    probe = [
        ffprobe,
        "-v",
        "error",
        "-show_entries",
        "stream=codec_name,width,height",
        "-of",
        "json",
    ]
    for name in ("media.m3u8", "master.m3u8"):
        run = subprocess.run(
            [*probe, str(tmp_path / name)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == 0 and run.stderr == "", run.stderr
        streams = json.loads(run.stdout)["streams"]
        names = sorted(s["codec_name"] for s in streams)
        assert names == ["aac", "h264"]
        video = next(s for s in streams if s["codec_name"] == "h264")
        assert (video["width"], video["height"]) == (320, 180)
