"""Benchmark media: a real H.264/AAC sample, made once, and its pre-chunked RTMP form.

The sample is encoded with PyAV (libx264 + aac) from a noisy ``testsrc2`` so the
encoder really spends its bitrate (a static pattern would come out far below 4 Mbit/s),
muxed to FLV, and cached on disk. Reading it back gives FLV tag bodies, which are
exactly RTMP audio/video message payloads.

:class:`PrechunkedLoop` turns one pass through the sample into RTMP wire bytes *once*.
Media messages use fmt-1 chunk headers (timestamp **delta**, length, type), so the
bytes do not depend on absolute time: the loop can be written again and again and the
receiver's timestamps keep increasing. Only the first message of each chunk stream in
the very first pass differs (its delta counts from the sequence headers at 0), so the
first pass and the steady passes are two pre-built lists. A load generator then does
no per-message work at all: it writes pre-built bytes at the right moment.
"""

from __future__ import annotations

import fractions
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from server.media.flv import FlvTagParser
from server.media.frame import CodecConfig, Frame
from server.protocols.rtmp import amf0, chunk

if TYPE_CHECKING:
    from av import AudioFrame, VideoFrame
    from av.container import InputContainer

TAG_AUDIO = 8
TAG_VIDEO = 9
TAG_DATA = 18
AUDIO_CSID = 4  # the csids our client uses (server.protocols.rtmp.client_session)
DATA_CSID = 5
VIDEO_CSID = 6
_CSID = {TAG_AUDIO: AUDIO_CSID, TAG_VIDEO: VIDEO_CSID}
_TAG_HEADER = struct.Struct(">BHBHBBHB")  # type, size 24 (16+8), ts 24 (16+8), ts ext, sid 24


@dataclass(frozen=True, slots=True)
class SampleSpec:
    """What to encode. The defaults are the benchmark's 4 Mbit/s 720p30 publisher."""

    seconds: int = 10
    width: int = 1280
    height: int = 720
    fps: int = 30
    video_bps: int = 3_872_000
    audio_bps: int = 128_000
    gop: int = 60
    noise: int = 12  # ffmpeg ``noise`` filter strength: makes the bitrate real
    bframes: int = 2

    @property
    def name(self) -> str:
        return (
            f"sample-{self.width}x{self.height}p{self.fps}-{self.seconds}s-"
            f"{(self.video_bps + self.audio_bps) // 1000}k-n{self.noise}-b{self.bframes}"
            f"-g{self.gop}.flv"
        )


@dataclass(frozen=True, slots=True)
class Tag:
    """One FLV tag: type (8 audio, 9 video, 18 data), timestamp in ms, body."""

    type_id: int
    timestamp: int
    body: bytes


# --------------------------------------------------------------------------- making


def make_sample(path: Path, spec: SampleSpec) -> Path:
    """Encode ``spec`` to an FLV file at ``path`` (takes ~1 CPU-s per second of 720p)."""
    import av  # imported here: only sample creation needs it

    path.parent.mkdir(parents=True, exist_ok=True)
    graph = f"testsrc2=size={spec.width}x{spec.height}:rate={spec.fps}"
    if spec.noise:
        graph += f",noise=alls={spec.noise}:allf=t+u"
    tmp = path.with_suffix(".tmp")
    with (
        av.open(graph, format="lavfi") as vsrc,
        av.open("sine=frequency=1000:sample_rate=48000", format="lavfi") as asrc,
        av.open(str(tmp), "w", format="flv") as out,
    ):
        video = out.add_stream("libx264", rate=spec.fps)
        video.width, video.height, video.pix_fmt = spec.width, spec.height, "yuv420p"
        video.bit_rate = spec.video_bps
        kbps = spec.video_bps // 1000
        video.options = {
            "preset": "veryfast",
            "g": str(spec.gop),
            "keyint_min": str(spec.gop),
            "sc_threshold": "0",
            "bf": str(spec.bframes),
            "maxrate": f"{kbps}k",
            "bufsize": f"{kbps // 2}k",
            "x264-params": "nal-hrd=cbr:force-cfr=1",
        }
        audio = out.add_stream("aac", rate=48000)
        audio.bit_rate = spec.audio_bps
        audio.layout = "stereo"
        video_frames = _video_frames(vsrc, spec)
        audio_frames = _audio_frames(asrc, spec.seconds)
        next_audio = next(audio_frames, None)
        for frame in video_frames:
            t = (frame.pts or 0) / spec.fps  # we set pts = frame index
            while next_audio is not None and (next_audio.pts or 0) / 48000 <= t:
                out.mux(audio.encode(next_audio))
                next_audio = next(audio_frames, None)
            out.mux(video.encode(frame))
        while next_audio is not None:
            out.mux(audio.encode(next_audio))
            next_audio = next(audio_frames, None)
        out.mux(video.encode(None))
        out.mux(audio.encode(None))
    tmp.replace(path)
    return path


def _video_frames(src: InputContainer, spec: SampleSpec) -> Iterator[VideoFrame]:
    from av.video.frame import PictureType

    tb = fractions.Fraction(1, spec.fps)
    for index, frame in enumerate(src.decode(video=0)):
        if index >= spec.seconds * spec.fps:
            return
        frame = frame.reformat(format="yuv420p")
        frame.pts, frame.time_base = index, tb
        # lavfi marks every decoded test frame as an I picture, and libx264 honours a
        # forced picture type: without this reset every frame of the sample would be a
        # keyframe (300 of 300), which makes every LL-HLS part one frame long and every
        # GOP cache one frame deep.
        frame.pict_type = PictureType.NONE
        yield frame


def _audio_frames(src: InputContainer, seconds: int) -> Iterator[AudioFrame]:
    import av

    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=48000, frame_size=1024)
    pts = 0
    for frame in src.decode(audio=0):
        for out in resampler.resample(frame):
            if pts >= seconds * 48000:
                return
            out.pts, out.time_base = pts, fractions.Fraction(1, 48000)
            pts += out.samples
            yield out


def ensure_sample(cache_dir: Path, spec: SampleSpec | None = None) -> Path:
    """The cached sample for ``spec``, encoded on first use."""
    spec = spec or SampleSpec()
    path = cache_dir / spec.name
    if not path.exists():
        make_sample(path, spec)
    return path


# --------------------------------------------------------------------------- reading


def read_flv(path: Path) -> list[Tag]:
    """All tags of an FLV file in file order (audio, video and script data)."""
    data = path.read_bytes()
    if data[:3] != b"FLV":
        raise ValueError(f"{path} is not an FLV file")
    pos = int.from_bytes(data[5:9], "big") + 4  # header, then PreviousTagSize0
    tags: list[Tag] = []
    while pos + 11 <= len(data):
        type_id, size_hi, size_lo, ts_hi, ts_lo, ts_ext, _, _ = _TAG_HEADER.unpack_from(data, pos)
        size = size_hi << 8 | size_lo
        timestamp = ts_ext << 24 | ts_hi << 8 | ts_lo
        body = data[pos + 11 : pos + 11 + size]
        if len(body) < size:
            break
        tags.append(Tag(type_id & 0x1F, timestamp, body))
        pos += 11 + size + 4
    return tags


@dataclass(frozen=True, slots=True)
class Sample:
    """A sample as the media model sees it: configs, then frames in decode order."""

    video: CodecConfig
    audio: CodecConfig
    frames: list[Frame]


def sample_frames(tags: list[Tag]) -> Sample:
    """Parse tag bodies with the server's own FLV parser into configs and frames."""
    parser = FlvTagParser()
    configs: dict[int, CodecConfig] = {}
    frames: list[Frame] = []
    for tag in tags:
        if tag.type_id == TAG_VIDEO:
            result = parser.video(tag.body, tag.timestamp)
        elif tag.type_id == TAG_AUDIO:
            result = parser.audio(tag.body, tag.timestamp)
        else:
            continue
        if isinstance(result, CodecConfig):
            configs.setdefault(tag.type_id, result)
        elif isinstance(result, Frame):
            frames.append(result)
    return Sample(configs[TAG_VIDEO], configs[TAG_AUDIO], frames)


# --------------------------------------------------------------------------- pre-chunking


def _fmt1_message(csid: int, type_id: int, delta: int, payload: bytes, chunk_size: int) -> bytes:
    """One message with a fmt-1 first chunk (delta, length, type; stream inherited)."""
    if not 0 <= delta < chunk.EXTENDED_TIMESTAMP:
        raise ValueError(f"timestamp delta {delta} outside the 24-bit range")
    head = chunk.encode_header(1, csid, delta, len(payload), type_id)
    if len(payload) <= chunk_size:
        return head + payload
    cont = chunk.encode_basic_header(3, csid)
    parts = [head, payload[:chunk_size]]
    for offset in range(chunk_size, len(payload), chunk_size):
        parts.append(cont)
        parts.append(payload[offset : offset + chunk_size])
    return b"".join(parts)


GROUPINGS = ("message", "frame")
"""How messages are cut into writes: ``message`` = one write per audio or video message
at its own timestamp (what ffmpeg and OBS do: each packet is sent when it is encoded);
``frame`` = one write per video frame carrying the audio before it (fewer wake-ups)."""


@dataclass(frozen=True, slots=True)
class Group:
    """Bytes to write at ``offset`` seconds into a pass."""

    offset: float
    wire: bytes


class PrechunkedLoop:
    """The sample as RTMP wire bytes for one publisher connection (see module doc).

    ``head``: onMetaData + the two sequence headers (fmt 0, timestamp 0).
    ``first`` / ``steady``: the groups of the first pass and of every later pass;
    pass ``k`` plays group ``g`` at ``k * period + g.offset`` seconds.
    """

    def __init__(
        self, tags: list[Tag], stream_id: int, chunk_size: int, grouping: str = "message"
    ) -> None:
        if grouping not in GROUPINGS:
            raise ValueError(f"grouping must be one of {GROUPINGS}")
        self.grouping = grouping
        media = [t for t in tags if t.type_id in _CSID]
        configs = [t for t in media if _is_config(t)]
        frames = sorted((t for t in media if _is_coded(t)), key=lambda t: t.timestamp)
        video = [t.timestamp for t in frames if t.type_id == TAG_VIDEO]
        base = frames[0].timestamp
        step = (video[-1] - video[0]) / max(1, len(video) - 1)
        self.period_ms = round(video[-1] - base + step)
        frames = [
            Tag(t.type_id, t.timestamp - base, t.body)
            for t in frames
            if t.timestamp - base < self.period_ms
        ]
        self.period = self.period_ms / 1000
        self.messages_per_pass = len(frames)
        self.head = self._head(tags, configs, stream_id, chunk_size)
        per_message = grouping == "message"
        self.first = self._groups(frames, {AUDIO_CSID: 0, VIDEO_CSID: 0}, chunk_size, per_message)
        last = {
            csid: max(t.timestamp for t in frames if _CSID[t.type_id] == csid) - self.period_ms
            for csid in (AUDIO_CSID, VIDEO_CSID)
        }
        self.steady = self._groups(frames, last, chunk_size, per_message)
        self.bytes_per_pass = sum(len(g.wire) for g in self.steady)
        self.bitrate = self.bytes_per_pass * 8 / self.period

    @staticmethod
    def _head(tags: list[Tag], configs: list[Tag], stream_id: int, chunk_size: int) -> bytes:
        meta = [t for t in tags if t.type_id == TAG_DATA]
        parts = []
        if meta:  # the FLV file's onMetaData, re-wrapped the way a publisher sends it
            body = _as_set_data_frame(meta[0].body)
            parts.append(chunk.encode_message(DATA_CSID, TAG_DATA, stream_id, 0, body, chunk_size))
        for tag in configs:
            csid = _CSID[tag.type_id]
            parts.append(
                chunk.encode_message(csid, tag.type_id, stream_id, 0, tag.body, chunk_size)
            )
        return b"".join(parts)

    @staticmethod
    def _groups(
        frames: list[Tag], previous: dict[int, int], chunk_size: int, per_message: bool
    ) -> list[Group]:
        prev = dict(previous)
        groups: list[Group] = []
        pending: list[bytes] = []
        for tag in frames:
            csid = _CSID[tag.type_id]
            pending.append(
                _fmt1_message(csid, tag.type_id, tag.timestamp - prev[csid], tag.body, chunk_size)
            )
            prev[csid] = tag.timestamp
            if per_message or tag.type_id == TAG_VIDEO:
                groups.append(Group(tag.timestamp / 1000, b"".join(pending)))
                pending = []
        if pending:
            groups[-1] = Group(groups[-1].offset, groups[-1].wire + b"".join(pending))
        return groups

    def batches(self, size: int, *, steady: bool = True) -> list[bytes]:
        """One pass cut into writes of about ``size`` bytes (for flat-out sending)."""
        out: list[bytes] = []
        pending: list[bytes] = []
        held = 0
        for group in self.steady if steady else self.first:
            pending.append(group.wire)
            held += len(group.wire)
            if held >= size:
                out.append(b"".join(pending))
                pending, held = [], 0
        if pending:
            out.append(b"".join(pending))
        return out


def _is_coded(tag: Tag) -> bool:
    """Coded frames only: sequence headers go in ``head``, and the end-of-sequence tag
    the FLV muxer writes must not be replayed every pass."""
    return len(tag.body) > 1 and tag.body[1] == 1


def _is_config(tag: Tag) -> bool:
    if tag.type_id == TAG_VIDEO:
        return len(tag.body) > 1 and tag.body[1] == 0 and (tag.body[0] & 0x0F) == 7
    return len(tag.body) > 1 and tag.body[0] >> 4 == 10 and tag.body[1] == 0


def _as_set_data_frame(script_body: bytes) -> bytes:
    """FLV script tag = AMF0 "onMetaData" + ECMA array; a publisher prefixes it with
    ``@setDataFrame`` (commands.set_data_frame does the same for dicts)."""
    prefix = amf0.encode_values("@setDataFrame")
    return prefix + script_body
