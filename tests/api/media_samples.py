"""Test media made on the spot with PyAV: a short 320x180 H.264/AAC mp4, never downloaded."""

from __future__ import annotations

import fractions
from pathlib import Path

import av

WIDTH, HEIGHT, FPS, RATE = 320, 180, 25, 48000


def make_clip(path: Path, seconds: int = 2) -> Path:
    """``seconds`` of testsrc2 video and a sine tone, muxed to mp4 (about 100 KB)."""
    with (
        av.open(f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}", format="lavfi") as vsrc,
        av.open(f"sine=frequency=440:sample_rate={RATE}", format="lavfi") as asrc,
        av.open(str(path), "w", format="mp4") as out,
    ):
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.options = {"preset": "ultrafast"}
        audio = out.add_stream("aac", rate=RATE)
        audio.layout = "stereo"
        for index, frame in enumerate(vsrc.decode(video=0)):
            if index >= seconds * FPS:
                break
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = index, fractions.Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=RATE, frame_size=1024)
        pts = 0
        for frame in asrc.decode(audio=0):
            for chunk in resampler.resample(frame):
                chunk.pts = pts
                pts += chunk.samples
                out.mux(audio.encode(chunk))
            if pts >= seconds * RATE:
                break
        out.mux(audio.encode(None))
    return path
