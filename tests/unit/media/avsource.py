"""Real encoded media as ``Frame`` lists, made with PyAV encoders at test time.

The packagers (fMP4, MPEG-TS, HLS) are checked against what FFmpeg's encoders really
produce (B-frames, AAC priming, in-band parameter sets), converted into the canonical
frame model the way ingest does it: Annex B -> 4-byte length prefixes, parameter sets
moved into the CodecConfig.
"""

from __future__ import annotations

import io
import math
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import Any

import av
import av.logging

from server.media import aac, h264, h265, nal
from server.media.frame import TIMEBASE, Codec, CodecConfig, Frame, TrackKind

WIDTH, HEIGHT, FPS = 320, 180, 30
AUDIO_RATE = 48000


@dataclass(frozen=True, slots=True)
class Media:
    """Configs plus frames in decode order (tracks interleaved by dts)."""

    video: CodecConfig | None
    audio: CodecConfig | None
    frames: tuple[Frame, ...]

    @property
    def configs(self) -> list[CodecConfig]:
        return [c for c in (self.video, self.audio) if c is not None]

    def track(self, kind: TrackKind) -> list[Frame]:
        return [f for f in self.frames if f.track is kind]


def _picture(index: int) -> av.VideoFrame:
    """A moving gradient: cheap to make, but gives the encoder real motion to code."""
    frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
    for n, plane in enumerate(frame.planes):
        row = bytes(((x + index * 4 + n * 50) & 0xFF) for x in range(plane.line_size))
        plane.update(row * (plane.buffer_size // plane.line_size))
    frame.pts = index
    return frame


def _video_context(codec: str, gop: int, bframes: int) -> av.VideoCodecContext:
    ctx = av.CodecContext.create(codec, "w")
    assert isinstance(ctx, av.VideoCodecContext)
    ctx.width, ctx.height, ctx.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    ctx.time_base = Fraction(1, FPS)
    ctx.framerate = Fraction(FPS, 1)
    ctx.gop_size = gop
    if codec == "libx264":
        ctx.options = {"preset": "veryfast", "bf": str(bframes), "sc_threshold": "0"}
        ctx.options["x264-params"] = f"keyint={gop}:min-keyint={gop}:scenecut=0"
    else:
        params = f"log-level=error:keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}"
        ctx.options = {"preset": "ultrafast", "x265-params": params}
    return ctx


def _video_config(codec: str, nals: Sequence[bytes]) -> CodecConfig:
    if codec == "libx264":
        sps, pps = h264.parameter_sets(nals)
        return h264.config_from_parameter_sets(sps, pps)
    vps, sps, pps = h265.parameter_sets(nals)
    return h265.config_from_parameter_sets(vps, sps, pps)


def _is_parameter_set(codec: str, nal_unit: bytes) -> bool:
    if codec == "libx264":
        return h264.nal_type(nal_unit) in (h264.NAL_SPS, h264.NAL_PPS, h264.NAL_AUD)
    return h265.nal_type(nal_unit) in (h265.NAL_VPS, h265.NAL_SPS, h265.NAL_PPS, h265.NAL_AUD)


def encode_video(
    codec: str = "libx264", seconds: float = 4, gop: int = 30, bframes: int = 2
) -> tuple[CodecConfig, list[Frame]]:
    """Encode ``seconds`` of 320x180@30 and return the config and canonical frames."""
    ctx = _video_context(codec, gop, bframes)
    packets = []
    for i in range(round(seconds * FPS)):
        packets += ctx.encode(_picture(i))
    packets += ctx.encode(None)
    config: CodecConfig | None = None
    frames: list[Frame] = []
    name = Codec.H264 if codec == "libx264" else Codec.H265
    for packet in packets:
        nals = nal.split_annexb(bytes(packet))
        if config is None:
            config = _video_config(codec, nals)
        body = nal.nals_to_length_prefixed(n for n in nals if not _is_parameter_set(codec, n))
        scale = TIMEBASE // FPS
        assert packet.pts is not None and packet.dts is not None
        frame = Frame(
            TrackKind.VIDEO, name, packet.dts * scale, packet.pts * scale, packet.is_keyframe, body
        )
        frames.append(frame)
    assert config is not None
    return config, frames


def _sine(frame: av.AudioFrame, start: int) -> None:
    samples = frame.samples
    wave = array(
        "f", (math.sin(2 * math.pi * 440 * (start + n) / AUDIO_RATE) * 0.3 for n in range(samples))
    )
    for plane in frame.planes:
        plane.update(wave.tobytes()[: plane.buffer_size])


def encode_audio(seconds: float = 4) -> tuple[CodecConfig, list[Frame]]:
    """Encode ``seconds`` of a 48 kHz stereo tone with FFmpeg's AAC encoder."""
    ctx = av.CodecContext.create("aac", "w")
    assert isinstance(ctx, av.AudioCodecContext)
    ctx.sample_rate, ctx.layout, ctx.format = AUDIO_RATE, "stereo", "fltp"
    ctx.time_base = Fraction(1, AUDIO_RATE)
    ctx.open()
    config = aac.config_from_asc(bytes(ctx.extradata or b""))
    packets = []
    size = ctx.frame_size
    for i in range(math.ceil(seconds * AUDIO_RATE / size)):
        frame = av.AudioFrame(format="fltp", layout="stereo", samples=size)
        frame.sample_rate, frame.pts = AUDIO_RATE, i * size
        _sine(frame, i * size)
        packets += ctx.encode(frame)
    packets += ctx.encode(None)
    frames = []
    for packet in packets:
        assert packet.pts is not None
        ticks = packet.pts * TIMEBASE // AUDIO_RATE
        frames.append(Frame(TrackKind.AUDIO, Codec.AAC, ticks, ticks, True, bytes(packet)))
    return config, frames


def interleave(*tracks: Sequence[Frame]) -> tuple[Frame, ...]:
    """Merge per-track decode-order lists by dts (stable: video first on ties)."""
    merged = [f for t in tracks for f in t]
    merged.sort(key=lambda f: (f.dts, f.track is not TrackKind.VIDEO))
    return tuple(merged)


@cache
def media(
    video: str | None = "libx264",
    audio: bool = True,
    seconds: float = 4,
    gop: int = 30,
    bframes: int = 2,
) -> Media:
    """Cached A/V (or single-track) media for the packager tests."""
    vconf, vframes = encode_video(video, seconds, gop, bframes) if video else (None, [])
    aconf, aframes = encode_audio(seconds) if audio else (None, [])
    return Media(vconf, aconf, interleave(vframes, aframes))


def has_encoder(name: str) -> bool:
    return name in av.codecs_available


def decode_all(data: bytes, fmt: str | None = None) -> dict[str, Any]:
    """Demux + decode an in-memory file with FFmpeg: streams, decoded frame counts, pts
    per stream type, and every error FFmpeg logged while doing it (must stay empty)."""
    out: dict[str, Any] = {}
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture() as logs, av.open(io.BytesIO(data), format=fmt) as container:
            for stream in container.streams:
                cc = stream.codec_context
                out[stream.type] = {
                    "codec": cc.name,
                    "width": getattr(cc, "width", 0),
                    "height": getattr(cc, "height", 0),
                    "sample_rate": getattr(cc, "sample_rate", 0),
                }
            counts: dict[str, int] = {}
            pts: dict[str, list[int]] = {}
            for packet in container.demux():
                kind = packet.stream.type
                for frame in packet.decode():
                    counts[kind] = counts.get(kind, 0) + 1
                    if frame.pts is not None:
                        pts.setdefault(kind, []).append(frame.pts)
    finally:
        av.logging.set_level(previous)
    out["decoded"] = counts
    out["pts"] = pts
    out["errors"] = [m for level, _, m in logs if level <= av.logging.ERROR]
    return out


def iter_boxes(
    data: bytes, start: int = 0, end: int | None = None
) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of the boxes in ``data[start:end]``."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size = int.from_bytes(data[pos : pos + 4], "big")
        assert size >= 8, "box size"
        yield data[pos + 4 : pos + 8], pos + 8, pos + size
        pos += size
    assert pos == end, "boxes must tile their container exactly"
