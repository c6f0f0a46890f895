"""Micro-benchmark of the HLS packaging hot paths: CPU microseconds per frame.

A synthetic 4 Mbit/s stream (720p30 H.264 sizes: 3.87 Mbit/s video with a keyframe
every 2 s at ~6x the size of a P-frame, 128 kbit/s AAC at 48 kHz) -- packaging cost
depends on frame count and sizes, not on picture content. The SPS/PPS come from a real
one-frame libx264 encode so the TS muxer writes real parameter sets.

Prints one JSON line: µs per frame (audio and video frames together) for
* ``fmp4_fragment``: Fmp4Muxer.fragment per 0.5 s part;
* ``ts_mux``: TsMuxer.mux per frame;
* ``ts_demux``: TsDemuxer.feed of the muxed stream in 1316-byte datagrams;
* ``segmenter_fmp4_ll`` / ``segmenter_ts``: Segmenter.on_frame end to end (cutting,
  fragments or packets, segment sealing, one playlist render per change).
Best of ``--repeat`` runs, since other work on the machine only ever adds time.

Run: .venv/bin/python bench/hls_micro.py [--seconds N] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import struct
import sys
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.hls import Segmenter
from server.media import aac, h264, nal
from server.media.fmp4 import Fmp4Muxer
from server.media.frame import Codec, CodecConfig, Frame, TrackKind
from server.media.mpegts import TsDemuxer, TsMuxer
from server.settings import HlsSettings

FPS = 30
VIDEO_BPS = 3_872_000
AUDIO_BPS = 128_000
GOP = 60
AAC_TICKS = 1920  # 1024 samples at 48 kHz in 90 kHz ticks


def video_config() -> CodecConfig:
    import av  # only to get real SPS/PPS for 720p

    ctx = av.CodecContext.create("libx264", "w")
    assert isinstance(ctx, av.VideoCodecContext)
    ctx.width, ctx.height, ctx.pix_fmt = 1280, 720, "yuv420p"
    ctx.time_base, ctx.framerate = Fraction(1, FPS), Fraction(FPS, 1)
    ctx.options = {"preset": "ultrafast"}
    packets = ctx.encode(av.VideoFrame(1280, 720, "yuv420p")) + ctx.encode(None)
    sps, pps = h264.parameter_sets(nal.split_annexb(bytes(packets[0])))
    return h264.config_from_parameter_sets(sps, pps)


def frames(seconds: int) -> list[Frame]:
    """Interleaved video/audio frames in decode order with realistic sizes."""
    rnd = random.Random(1)
    per_frame = VIDEO_BPS / 8 / FPS
    p_size = int(per_frame * GOP / (GOP + 5))  # a keyframe is ~6 P-frames
    out: list[Frame] = []
    noise = rnd.randbytes(1 << 20)
    for i in range(seconds * FPS):
        key = i % GOP == 0
        size = p_size * 6 if key else p_size
        body = (b"\x65" if key else b"\x41") + noise[i % 1000 : i % 1000 + size - 1]
        payload = struct.pack(">I", len(body)) + body
        dts = i * 3000
        out.append(Frame(TrackKind.VIDEO, Codec.H264, dts, dts, key, payload))
    audio_size = AUDIO_BPS // 8 * 1024 // 48000
    for n in range(seconds * 48000 // 1024):
        dts = n * AAC_TICKS
        out.append(Frame(TrackKind.AUDIO, Codec.AAC, dts, dts, True, noise[n : n + audio_size]))
    out.sort(key=lambda f: (f.dts, f.track is TrackKind.AUDIO))
    return out


def best(repeat: int, run: Callable[[], int]) -> float:
    """Best µs per frame over ``repeat`` runs (``run`` returns the frame count)."""
    results = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        count = run()
        results.append((time.perf_counter() - t0) * 1e6 / count)
    return round(min(results), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    video = video_config()
    audio = aac.config_from_asc(aac.build_asc(2, 48000, 2))
    stream = frames(args.seconds)
    bitrate = sum(len(f.payload) for f in stream) * 8 / args.seconds

    def fragment() -> int:
        muxer = Fmp4Muxer([video, audio])
        part: dict[TrackKind, list[Frame]] = {TrackKind.VIDEO: [], TrackKind.AUDIO: []}
        for frame in stream:
            if frame.track is TrackKind.VIDEO and len(part[TrackKind.VIDEO]) == 15:
                muxer.fragment(part, end_dts={TrackKind.VIDEO: frame.dts})
                part = {TrackKind.VIDEO: [], TrackKind.AUDIO: []}
            part[frame.track].append(frame)
        return len(stream)

    def ts_mux() -> int:
        mux = TsMuxer([video, audio]).mux
        for frame in stream:
            mux(frame)
        return len(stream)

    muxer = TsMuxer([video, audio])
    ts = b"".join(muxer.mux(f) for f in stream)

    def ts_demux() -> int:
        feed = TsDemuxer().feed
        for pos in range(0, len(ts), 1316):
            feed(ts[pos : pos + 1316])
        return len(stream)

    def segmenter(fmt: str) -> Callable[[], int]:
        def run() -> int:
            settings = HlsSettings(segment_format=fmt)

            def render(_: object) -> None:
                seg.media_playlist()

            seg = Segmenter(settings, on_change=render, streaming=lambda: False)
            seg.on_config(video)
            seg.on_config(audio)
            for frame in stream:
                seg.on_frame(frame, 0.0)
            return len(stream)

        return run

    result = {
        "bench": "hls_micro",
        "stream_mbps": round(bitrate / 1e6, 2),
        "frames_per_second": round(len(stream) / args.seconds, 1),
        "us_per_frame": {
            "fmp4_fragment": best(args.repeat, fragment),
            "ts_mux": best(args.repeat, ts_mux),
            "ts_demux": best(args.repeat, ts_demux),
            "segmenter_fmp4_ll": best(args.repeat, segmenter("fmp4")),
            "segmenter_ts": best(args.repeat, segmenter("ts")),
        },
        "python": platform.python_version(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
