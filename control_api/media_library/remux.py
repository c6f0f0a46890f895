"""The seekable MP4 behind ``mp4Url``: an MP4 upload as it is, anything else remuxed once.

Remuxing copies the packets of the first video and audio track into an MP4 with the
``moov`` box first (faststart), so a browser can seek with Range requests before the
whole file arrives. Nothing is re-encoded: files whose codecs MP4 does not carry get
no MP4 (their item has no ``mp4Url``). Blocking, for a worker thread.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import av

from control_api.media_library.probe import NotMedia, ProbeResult

MP4_SUFFIX = ".mp4"
# FFmpeg's "mov,mp4,m4a,3gp,3g2,mj2" demuxer: already an ISO-BMFF file, served as is.
MP4_CONTAINERS = frozenset({"mov", "mp4", "m4a", "m4v", "3gp", "3g2", "mj2"})
# What browsers play from an MP4 and FFmpeg's MP4 muxer writes (FFmpeg's codec names).
MP4_CODECS = frozenset(
    {"h264", "hevc", "av1", "vp9", "aac", "mp3", "opus", "flac", "alac", "ac3", "eac3"}
)


def mp4_plan(result: ProbeResult) -> str:
    """ "as-is", "remux" or "none" for a probed file."""
    if result.container in MP4_CONTAINERS:
        return "as-is"
    codecs = [t["codec"] for t in (result.video, result.audio) if t is not None]
    return "remux" if codecs and all(c in MP4_CODECS for c in codecs) else "none"


def remux_to_mp4(source: Path, target: Path) -> None:
    """Write ``target`` (through a temporary name, so it is whole or absent); NotMedia
    when the source turns out to be damaged."""
    partial = target.with_name(target.name + ".part")
    try:
        with av.open(str(source), mode="r", metadata_errors="ignore") as inp:
            _copy(inp, partial)
        os.replace(partial, target)
    except (av.error.FFmpegError, OSError) as exc:
        partial.unlink(missing_ok=True)
        detail = getattr(exc, "strerror", None) or type(exc).__name__
        raise NotMedia(f"the file is damaged: remuxing to MP4 failed ({detail})") from None


def _copy(inp: Any, partial: Path) -> None:
    chosen = [
        s
        for s in (next(iter(inp.streams.video), None), next(iter(inp.streams.audio), None))
        if s is not None
    ]
    options = {"movflags": "+faststart"}
    with av.open(str(partial), mode="w", format="mp4", options=options) as out:
        mapping = {s.index: out.add_stream_from_template(s) for s in chosen}
        for packet in inp.demux(*chosen):
            if packet.dts is None:
                continue
            packet.stream = mapping[packet.stream.index]
            out.mux(packet)
