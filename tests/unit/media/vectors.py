"""Real bitstreams made with PyAV (FFmpeg) for the parser tests, plus an FLV file reader.

Generated at test time so the tests check our parsers against what FFmpeg's encoders and
muxers actually produce, not against bytes we wrote ourselves.
"""

from __future__ import annotations

import io
import math
import random
from array import array
from collections.abc import Iterator
from fractions import Fraction
from functools import cache

import av

QUIET = {"x265-params": "log-level=error"}


def _video_frame(width: int, height: int, index: int) -> av.VideoFrame:
    frame = av.VideoFrame(width, height, "yuv420p")
    rnd = random.Random(index)
    for plane in frame.planes:
        if index == 0:
            plane.update(rnd.randbytes(plane.buffer_size))
        else:
            plane.update(bytes([(index * 37) & 0xFF]) * plane.buffer_size)
    frame.pts = index
    return frame


def _fill_sine(frame: av.AudioFrame, start: int) -> None:
    """A 440 Hz tone in whatever sample format the encoder asked for."""
    wave = [math.sin(2 * math.pi * 440 * (start + n) / 48000) * 0.5 for n in range(frame.samples)]
    planar = frame.format.is_planar
    channels = 1 if planar else len(frame.layout.channels)
    samples = [v for v in wave for _ in range(channels)]
    if frame.format.name.startswith("flt"):
        data = array("f", samples).tobytes()
    else:
        data = array("h", [int(v * 32767) for v in samples]).tobytes()
    for plane in frame.planes:
        plane.update(data[: plane.buffer_size].ljust(plane.buffer_size, b"\0"))


def has_codec(name: str) -> bool:
    return name in av.codecs_available


Options = tuple[tuple[str, str], ...]


def _encode_video(
    out: av.container.OutputContainer,
    codec: str,
    size: tuple[int, int],
    frames: int,
    options: Options,
) -> None:
    stream = out.add_stream(codec, rate=30)
    assert isinstance(stream, av.VideoStream)
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    stream.options = dict(options)
    for i in range(frames):
        for packet in stream.encode(_video_frame(size[0], size[1], i)):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def _encode_audio(
    out: av.container.OutputContainer, codec: str, rate: int, layout: str, frames: int
) -> None:
    stream = out.add_stream(codec, rate=rate)
    assert isinstance(stream, av.AudioStream)
    stream.layout = layout
    size = stream.codec_context.frame_size or 960
    for i in range(frames):
        frame = av.AudioFrame(format=stream.format.name, layout=layout, samples=size)
        _fill_sine(frame, i * size)
        frame.sample_rate, frame.pts = rate, i * size
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


@cache
def encode_flv(
    vcodec: str | None,
    width: int = 320,
    height: int = 240,
    frames: int = 5,
    acodec: str | None = None,
    options: Options = (),
    channels: str = "mono",
) -> bytes:
    """An in-memory FLV file written by FFmpeg's FLV muxer (video first, then audio)."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="flv") as out:
        assert isinstance(out, av.container.OutputContainer)
        # Streams must all exist before the first packet is muxed.
        if vcodec and acodec:
            _encode_av(out, vcodec, (width, height), frames, options, acodec, channels)
        elif vcodec:
            _encode_video(out, vcodec, (width, height), frames, options)
        elif acodec:
            _encode_audio(out, acodec, 44100 if acodec == "aac" else 48000, channels, 8)
    return buf.getvalue()


def _encode_av(
    out: av.container.OutputContainer,
    vcodec: str,
    size: tuple[int, int],
    frames: int,
    options: Options,
    acodec: str,
    layout: str,
) -> None:
    video = out.add_stream(vcodec, rate=30)
    audio = out.add_stream(acodec, rate=44100 if acodec == "aac" else 48000)
    assert isinstance(video, av.VideoStream) and isinstance(audio, av.AudioStream)
    video.width, video.height = size
    video.pix_fmt = "yuv420p"
    video.options = dict(options)
    audio.layout = layout
    packets = []
    for i in range(frames):
        packets += video.encode(_video_frame(size[0], size[1], i))
    packets += video.encode()
    samples = audio.codec_context.frame_size or 960
    for i in range(8):
        frame = av.AudioFrame(format=audio.format.name, layout=layout, samples=samples)
        _fill_sine(frame, i * samples)
        frame.sample_rate, frame.pts = audio.codec_context.sample_rate, i * samples
        packets += audio.encode(frame)
    packets += audio.encode()
    for packet in packets:
        out.mux(packet)


def iter_flv_tags(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(tag type, timestamp ms, body) of each tag of an FLV file."""
    assert data[:3] == b"FLV"
    pos = int.from_bytes(data[5:9], "big") + 4
    while pos + 11 <= len(data):
        kind = data[pos]
        size = int.from_bytes(data[pos + 1 : pos + 4], "big")
        ts = int.from_bytes(data[pos + 4 : pos + 7], "big") | (data[pos + 7] << 24)
        yield kind, ts, data[pos + 11 : pos + 11 + size]
        pos += 11 + size + 4


@cache
def encode_annexb(
    codec: str, width: int, height: int, frames: int = 4, options: Options = ()
) -> tuple[tuple[bytes, bool], ...]:
    """(Annex B access unit, FFmpeg's keyframe flag) from a raw encoder without global header."""
    ctx = av.CodecContext.create(codec, "w")
    assert isinstance(ctx, av.VideoCodecContext)
    ctx.width, ctx.height = width, height
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = Fraction(1, 30)
    ctx.framerate = Fraction(30, 1)
    ctx.options = dict(options)
    out: list[tuple[bytes, bool]] = []
    for i in range(frames):
        out += [(bytes(p), p.is_keyframe) for p in ctx.encode(_video_frame(width, height, i))]
    out += [(bytes(p), p.is_keyframe) for p in ctx.encode(None)]
    return tuple(out)


def probe(data: bytes) -> list[dict[str, object]]:
    """What FFmpeg's demuxer/decoders report for each stream of an in-memory file."""
    with av.open(io.BytesIO(data)) as container:
        out: list[dict[str, object]] = []
        for s in container.streams:
            cc = s.codec_context
            out.append(
                {
                    "type": s.type,
                    "codec": cc.name,
                    "width": getattr(cc, "width", 0),
                    "height": getattr(cc, "height", 0),
                    "profile": cc.profile,
                    "level": getattr(cc, "level", None),
                    "sample_rate": getattr(cc, "sample_rate", 0),
                    "rate": s.average_rate if s.type == "video" else None,
                }
            )
        return out


@cache
def encode_audio(codec: str, fmt: str, rate: int, layout: str, frames: int = 6) -> bytes:
    """An in-memory audio-only file (e.g. ADTS from the aac encoder)."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        assert isinstance(out, av.container.OutputContainer)
        _encode_audio(out, codec, rate, layout, frames)
    return buf.getvalue()
