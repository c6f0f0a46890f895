"""Reading a library file with PyAV for VOD: its tracks, its layout, one segment's frames.

Only demuxing, never decoding: the packets are turned into ``media.Frame`` objects and
muxed by the same fMP4 writer live HLS uses, so a VOD segment is the file's own
samples. Everything here blocks on the disk and runs in the VOD service's worker
threads, never on the event loop.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from server.media.configs import config_from_record
from server.media.errors import MediaFormatError
from server.media.fmp4 import SUPPORTED_CODECS, Fmp4Muxer
from server.media.frame import TIMEBASE, Codec, CodecConfig, Frame, TrackKind

from .index import Keyframe, Span, cut

# FFmpeg's codec names for what the fMP4 writer carries.
_CODECS = {"h264": Codec.H264, "hevc": Codec.H265, "aac": Codec.AAC}


class UnsupportedCodec(Exception):
    """A track HLS (our fMP4 writer) cannot carry; ``codec`` is FFmpeg's name for it."""

    def __init__(self, codec: str, why: str = "") -> None:
        super().__init__(why or f"codec {codec} cannot be carried in HLS fMP4 segments")
        self.codec = codec


class UnreadableFile(Exception):
    """The file is gone or FFmpeg cannot read it; the message says why, without paths."""


@dataclass(frozen=True, slots=True)
class Track:
    stream_index: int
    config: CodecConfig
    time_base: Fraction

    def ticks(self, value: int) -> int:
        return value * self.time_base.numerator * TIMEBASE // self.time_base.denominator

    def units(self, ticks: int) -> int:
        return ticks * self.time_base.denominator // (self.time_base.numerator * TIMEBASE)


@dataclass(frozen=True, slots=True)
class Layout:
    """What a file's playlists need: its tracks (lead first), segments and sizes.

    ``offset`` (ticks) is added to every timestamp so decode times start at zero or
    later (files with B-frames often begin at a negative decode time).
    """

    tracks: tuple[Track, ...]
    spans: tuple[Span, ...]
    span_bytes: tuple[int, ...]
    offset: int

    @property
    def configs(self) -> list[CodecConfig]:
        return [t.config for t in self.tracks]


def _open(path: Path) -> Any:
    try:
        return av.open(str(path), mode="r", metadata_errors="ignore")
    except FileNotFoundError:
        raise UnreadableFile("the file is gone") from None
    except (av.error.FFmpegError, OSError) as exc:
        raise UnreadableFile(f"FFmpeg cannot read the file ({type(exc).__name__})") from None


def _length_size(config: CodecConfig) -> int:
    """NAL length size the file's samples use (the canonical frame form needs 4)."""
    record = config.extradata
    if config.codec == Codec.H264:
        return (record[4] & 3) + 1 if len(record) > 4 else 0
    return (record[21] & 3) + 1 if len(record) > 21 else 0


def _track(stream: Any) -> Track:
    ctx = stream.codec_context
    codec = _CODECS.get(ctx.name)
    if codec is None or codec not in SUPPORTED_CODECS:
        raise UnsupportedCodec(ctx.name)
    record = bytes(ctx.extradata or b"")
    try:
        config = config_from_record(codec, record)
    except MediaFormatError:
        raise UnsupportedCodec(
            ctx.name, f"{ctx.name} without an MP4 configuration record (remux the file to MP4)"
        ) from None
    if config.track is TrackKind.VIDEO:
        # config_from_record rewrites the record to 4-byte lengths; the samples keep theirs
        if _length_size(replace(config, extradata=record)) != 4:
            raise UnsupportedCodec(ctx.name, f"{ctx.name} with NAL lengths other than 4 bytes")
        rate = stream.average_rate or stream.guessed_rate
        if not config.fps and rate:
            config = replace(config, fps=float(rate))
    return Track(stream.index, config, Fraction(stream.time_base))


def _tracks(container: Any) -> tuple[Track, ...]:
    video = next(iter(container.streams.video), None)
    audio = next(iter(container.streams.audio), None)
    tracks = tuple(_track(s) for s in (video, audio) if s is not None)
    if not tracks:
        raise UnreadableFile("the file has no audio or video track")
    return tracks


@dataclass(slots=True)
class _Packet:
    track: Track
    dts: int
    pts: int
    keyframe: bool
    size: int
    duration: int
    raw: Any


def _packets(container: Any, tracks: tuple[Track, ...]) -> Iterator[_Packet]:
    by_index = {t.stream_index: t for t in tracks}
    streams = [container.streams[t.stream_index] for t in tracks]
    try:
        for packet in container.demux(*streams):
            if packet.dts is None or packet.size == 0:
                continue
            track = by_index[packet.stream.index]
            dts = track.ticks(packet.dts)
            pts = track.ticks(packet.pts) if packet.pts is not None else dts
            duration = track.ticks(packet.duration or 0)
            yield _Packet(track, dts, pts, packet.is_keyframe, packet.size, duration, packet)
    except av.error.FFmpegError as exc:
        raise UnreadableFile(f"the file is damaged ({type(exc).__name__})") from None


def scan(path: Path, target: float) -> Layout:
    """Read every packet header once: keyframes of the lead track, sizes, the end.

    Sizes are summed per keyframe interval as they come (one number per GOP, not one per
    packet), which is all the playlist's BANDWIDTH needs.
    """
    with _open(path) as container:
        tracks = _tracks(container)
        lead = tracks[0]
        keyframes: list[Keyframe] = []
        gop_bytes = [0]
        first_dts: int | None = None
        end_dts = end_pts = 0
        step = 0
        for p in _packets(container, tracks):
            first_dts = p.dts if first_dts is None else min(first_dts, p.dts)
            if p.track is lead and p.keyframe and (not keyframes or p.dts > keyframes[-1].dts):
                keyframes.append(Keyframe(p.dts, p.pts))
                gop_bytes.append(0)
            gop_bytes[-1] += p.size
            if p.track is lead:
                step = p.duration or step
                end_dts = max(end_dts, p.dts + step)
                end_pts = max(end_pts, p.pts + step)
    spans = tuple(cut(keyframes, end_dts, end_pts, target))
    if not spans:
        raise UnreadableFile("the file has no keyframe to start playback from")
    return Layout(
        tracks, spans, _span_bytes(spans, keyframes, gop_bytes), max(0, -(first_dts or 0))
    )


def _span_bytes(
    spans: tuple[Span, ...], keyframes: list[Keyframe], gop_bytes: list[int]
) -> tuple[int, ...]:
    """Bytes per segment from bytes per keyframe interval (``gop_bytes[0]`` is what came
    before the first keyframe: counted in the first segment)."""
    starts = [s.dts for s in spans]
    totals = [0] * len(spans)
    totals[0] += gop_bytes[0]
    for key, size in zip(keyframes, gop_bytes[1:], strict=True):
        totals[max(0, bisect_right(starts, key.dts) - 1)] += size
    return tuple(totals)


def init_segment(layout: Layout) -> bytes:
    return Fmp4Muxer(layout.configs).init_segment()


def segment(path: Path, layout: Layout, number: int) -> bytes:
    """Segment ``number`` as one moof+mdat: the lead track's frames by decode time, the
    others by presentation time, so every sample lands in exactly one segment."""
    span = layout.spans[number]
    first, last = number == 0, number == len(layout.spans) - 1
    frames: dict[TrackKind, list[Frame]] = {t.config.track: [] for t in layout.tracks}
    ends: dict[TrackKind, int] = {}
    lead = layout.tracks[0]
    with _open(path) as container:
        # From the previous segment's start: the other tracks' samples of this span may
        # be stored (interleaved) before the lead track's keyframe.
        since = layout.spans[max(0, number - 1)]
        if number:
            container.seek(lead.units(since.dts), stream=container.streams[lead.stream_index])
        for p in _packets(container, layout.tracks):
            kind = p.track.config.track
            if kind in ends:
                continue
            time, start, stop = (
                (p.dts, span.dts, span.end_dts)
                if p.track is lead
                else (p.pts, span.pts, span.end_pts)
            )
            if time >= stop and not last:
                ends[kind] = p.dts
                if len(ends) == len(frames):
                    break
            elif time >= start or first:
                frames[kind].append(
                    Frame(kind, p.track.config.codec, p.dts, p.pts, p.keyframe, bytes(p.raw))
                )
    muxer = Fmp4Muxer(layout.configs)
    return muxer.fragment(frames, end_dts=ends, offset=layout.offset)
