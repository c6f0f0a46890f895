"""Publish a synthetic stream to an RTMP URL with PyAV (bundled FFmpeg 8: Enhanced RTMP).

Run as a child process (``python -m tests.interop.pyav_publish URL ...``) so that a
hang in the network code can be killed from the test. Frames are paced to real time,
like ffmpeg's ``-re``, so the server sees a live source for ``--seconds``.
"""

from __future__ import annotations

import argparse
import array
import fractions
import math
import sys
import time
from typing import cast

import av


def _options(codec: str) -> dict[str, str]:
    if codec in ("libx265", "hevc"):
        return {"preset": "ultrafast", "tune": "zerolatency", "x265-params": "log-level=error"}
    if codec == "libx264":
        return {"preset": "ultrafast", "tune": "zerolatency"}
    if codec == "libsvtav1":
        return {"preset": "12", "svtav1-params": "fast-decode=1"}
    if codec == "libvpx-vp9":
        return {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    return {}


def publish(
    url: str,
    codec: str,
    width: int,
    height: int,
    fps: int,
    seconds: float,
    gop: int,
    enhanced_codecs: str | None,
) -> None:
    options = {"rtmp_enhanced_codecs": enhanced_codecs} if enhanced_codecs else {}
    with av.open(url, mode="w", format="flv", options=options, timeout=10.0) as out:
        video = cast(av.VideoStream, out.add_stream(codec, rate=fps, options=_options(codec)))
        video.width = width
        video.height = height
        video.pix_fmt = "yuv420p"
        video.codec_context.gop_size = gop
        video.time_base = fractions.Fraction(1, fps)
        audio = out.add_stream("aac", rate=48000, layout="stereo")
        samples = 1024
        tone = array.array(
            "f", (0.2 * math.sin(i * 2 * math.pi * 440 / 48000) for i in range(samples))
        ).tobytes()
        start = time.monotonic()
        audio_pts = 0
        for index in range(int(seconds * fps)):
            frame = av.VideoFrame(width, height, "yuv420p")
            for number, picture in enumerate(frame.planes):
                shade = (index * 3 + number * 80) % 256
                picture.update(bytes([shade]) * picture.buffer_size)
            frame.pts = index
            out.mux(video.encode(frame))
            while audio_pts < (index + 1) * 48000 // fps:
                sound = av.AudioFrame(format="fltp", layout="stereo", samples=samples)
                for channel in sound.planes:
                    channel.update(tone)
                sound.sample_rate = 48000
                sound.pts = audio_pts
                audio_pts += samples
                out.mux(audio.encode(sound))
            delay = start + (index + 1) / fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        out.mux(video.encode(None))
        out.mux(audio.encode(None))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--codec", default="libx265")
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--gop", type=int, default=50)
    parser.add_argument("--enhanced-codecs", default=None)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    publish(
        args.url,
        args.codec,
        width,
        height,
        args.fps,
        args.seconds,
        args.gop,
        args.enhanced_codecs,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
