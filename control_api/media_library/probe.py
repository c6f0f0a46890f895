"""Probing a file with PyAV: duration, container, first video and audio stream.

Runs in a worker thread (``asyncio.to_thread``): opening a file reads and parses up to
a few megabytes, which must not stall the event loop that carries live streams.
Only the container is opened and the stream parameters read; nothing is decoded
beyond what FFmpeg's own stream-info probe needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import av

AV_TIME_BASE = 1_000_000
# FFmpeg renders plain text as "video" (the tty demuxer) and opens still images as a
# one-frame stream; neither is something a channel can play.
TEXT_FORMATS = frozenset({"tty", "bin", "xbin", "adf", "idf"})
TEXT_CODECS = frozenset({"ansi", "bintext", "xbin", "idf"})


class NotMedia(Exception):
    """The file is not audio/video this server can read; the message says why, for users."""


@dataclass(frozen=True, slots=True)
class ProbeResult:
    duration_seconds: float | None
    container: str
    video: dict[str, Any] | None
    audio: dict[str, Any] | None


def _container_name(names: str, filename: str) -> str:
    """FFmpeg calls mp4 "mov,mp4,m4a,3gp,3g2,mj2": use the file's extension when it is one."""
    options = [n for n in names.split(",") if n]
    ext = PurePath(filename).suffix.lower().lstrip(".")
    return ext if ext in options else (options[0] if options else "unknown")


def _fps(stream: Any) -> float | None:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return round(float(rate), 3) if rate else None


def _duration(container: Any) -> float | None:
    if container.duration is not None and container.duration > 0:
        return round(float(container.duration) / AV_TIME_BASE, 3)
    best = None
    for stream in container.streams:
        if stream.duration and stream.time_base:
            seconds = float(stream.duration * stream.time_base)
            best = seconds if best is None else max(best, seconds)
    return round(best, 3) if best else None


def _reason(exc: BaseException) -> str:
    """FFmpeg's message without the server-side path it quotes."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).split(": '", 1)[0]


def _refuse_non_media(format_names: str, video: Any) -> None:
    names = set(format_names.split(","))
    if names & TEXT_FORMATS or (video is not None and video.codec_context.name in TEXT_CODECS):
        raise NotMedia("the file is text, not audio or video")
    if any(n == "image2" or n.endswith("_pipe") for n in names):
        raise NotMedia(
            f"the file is a still image ({video.codec_context.name}), not audio or video"
        )


def probe_file(path: Path, filename: str) -> ProbeResult:
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise NotMedia(f"not an audio or video file FFmpeg can read ({_reason(exc)})") from None
    except OSError as exc:
        raise NotMedia(f"the file could not be read ({_reason(exc)})") from None
    with container:
        video = next(iter(container.streams.video), None)
        audio = next(iter(container.streams.audio), None)
        if video is None and audio is None:
            raise NotMedia("the file has no audio or video stream")
        _refuse_non_media(container.format.name, video)
        video_info = None
        if video is not None:
            ctx = video.codec_context
            video_info = {
                "codec": ctx.name,
                "width": ctx.width,
                "height": ctx.height,
                "fps": _fps(video),
            }
        audio_info = None
        if audio is not None:
            actx = audio.codec_context
            audio_info = {
                "codec": actx.name,
                "sample_rate": actx.sample_rate,
                "channels": actx.channels,
            }
        return ProbeResult(
            duration_seconds=_duration(container),
            container=_container_name(container.format.name, filename),
            video=video_info,
            audio=audio_info,
        )
