"""FLV audio/video tag bodies (what RTMP message types 8 and 9 carry), both directions.

Parsing turns one tag body into a CodecConfig (sequence header), a Frame, an
EndOfSequence or Ignored, covering legacy AVC/HEVC(12)/AAC and Enhanced RTMP (ExHeader
with FourCC, ModEx, Multitrack keeping only track 0). Building produces legacy bodies
for H.264/AAC (what every RTMP server accepts) and enhanced bodies for the rest.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from .configs import config_from_record
from .errors import MediaFormatError
from .frame import TICKS_PER_MS, Codec, CodecConfig, Frame, TrackKind
from .nal import normalize_length_size

VIDEO_FOURCCS: dict[bytes, str] = {
    b"avc1": Codec.H264,
    b"hvc1": Codec.H265,
    b"av01": Codec.AV1,
    b"vp09": Codec.VP9,
}
AUDIO_FOURCCS: dict[bytes, str] = {b"mp4a": Codec.AAC, b"Opus": Codec.OPUS}
FOURCC_BY_CODEC: dict[str, bytes] = {
    codec: fourcc for table in (VIDEO_FOURCCS, AUDIO_FOURCCS) for fourcc, codec in table.items()
}

_LEGACY_VIDEO_CODECS: dict[int, str] = {7: Codec.H264, 12: Codec.H265}
_NAL_CODECS: Final = frozenset({Codec.H264, Codec.H265})
# The enum members and the clock constant the per-tag path uses, as Final module
# constants: compiled, reading a member of an enum from an interpreted module
# (server.media.tracks) is a class attribute lookup, ~135 ns each, per tag.
_VIDEO_TRACK: Final = TrackKind.VIDEO
_AUDIO_TRACK: Final = TrackKind.AUDIO
_H264: Final = Codec.H264
_H265: Final = Codec.H265
_AAC: Final = Codec.AAC
_TICKS_PER_MS: Final = TICKS_PER_MS
SOUND_FORMAT_AAC: Final = 10
SOUND_FORMAT_EX_HEADER: Final = 9
FRAME_KEY: Final = 1
FRAME_INTER: Final = 2
FRAME_GENERATED_KEY: Final = 4
FRAME_COMMAND: Final = 5
_MULTITRACK_MANY_CODECS: Final = 2
_MODEX_TIMESTAMP_OFFSET_NANO: Final = 0


class VideoPacketType(enum.IntEnum):
    """Enhanced RTMP VideoPacketType (low nibble of byte 0 when IsExHeader is set)."""

    SEQUENCE_START = 0
    CODED_FRAMES = 1
    SEQUENCE_END = 2
    CODED_FRAMES_X = 3
    METADATA = 4
    MPEG2TS_SEQUENCE_START = 5
    MULTITRACK = 6
    MODEX = 7


class AudioPacketType(enum.IntEnum):
    """Enhanced RTMP AudioPacketType (low nibble of byte 0 when sound format is 9)."""

    SEQUENCE_START = 0
    CODED_FRAMES = 1
    SEQUENCE_END = 2
    MULTICHANNEL_CONFIG = 4
    MULTITRACK = 5
    MODEX = 7


@dataclass(frozen=True, slots=True)
class EndOfSequence:
    """The publisher signalled the end of a coded sequence on one track."""

    track: TrackKind
    codec: str


@dataclass(frozen=True, slots=True)
class Ignored:
    """A well-formed tag that carries nothing for the bus (command, metadata, other track)."""

    reason: str


FlvResult = CodecConfig | Frame | EndOfSequence | Ignored


@dataclass(frozen=True, slots=True)
class _ExBody:
    """Where the selected track's body lies after the ExHeader, ModEx and Multitrack parts."""

    packet_type: int
    fourcc: bytes
    start: int
    end: int


def _si24(data: bytes, pos: int) -> int:
    """The signed 24-bit composition offset at ``pos`` (the caller checked the length).
    Byte by byte: no slice and no ``int.from_bytes`` call, in both twins."""
    value = (data[pos] << 16) | (data[pos + 1] << 8) | data[pos + 2]
    return value - (1 << 24) if value & 0x800000 else value


def _need(data: bytes, end: int, what: str) -> None:
    if end > len(data):
        raise MediaFormatError(f"truncated {what}")


def _read_modex(data: bytes, pos: int, packet_type: int) -> tuple[int, int, int]:
    """Consume ModEx blocks; returns (real packet type, position, nanosecond offset)."""
    nano = 0
    while packet_type == VideoPacketType.MODEX:  # ModEx is 7 for audio and video
        _need(data, pos + 1, "ModEx size")
        size = data[pos] + 1
        pos += 1
        if size == 256:
            _need(data, pos + 2, "ModEx size")
            size = int.from_bytes(data[pos : pos + 2], "big") + 1
            pos += 2
        _need(data, pos + size + 1, "ModEx data")
        modex = data[pos : pos + size]
        pos += size
        modex_type, packet_type = data[pos] >> 4, data[pos] & 0x0F
        pos += 1
        if modex_type == _MODEX_TIMESTAMP_OFFSET_NANO and size >= 3:
            nano = int.from_bytes(modex[:3], "big")
    return packet_type, pos, nano


def _select_track(data: bytes, pos: int, multitrack: int) -> _ExBody | None:
    """Parse a Multitrack header and return track 0's body, or None when it is absent."""
    _need(data, pos + 1, "multitrack header")
    mt_type, packet_type = data[pos] >> 4, data[pos] & 0x0F
    pos += 1
    if packet_type == multitrack or mt_type > _MULTITRACK_MANY_CODECS:
        raise MediaFormatError("invalid multitrack header")
    fourcc = b""
    if mt_type != _MULTITRACK_MANY_CODECS:
        _need(data, pos + 4, "multitrack FourCC")
        fourcc, pos = data[pos : pos + 4], pos + 4
    while pos < len(data):
        if mt_type == _MULTITRACK_MANY_CODECS:
            _need(data, pos + 4, "multitrack FourCC")
            fourcc, pos = data[pos : pos + 4], pos + 4
        _need(data, pos + 1, "multitrack track id")
        track_id, pos = data[pos], pos + 1
        end = len(data)
        if mt_type != 0:  # not OneTrack: a 24-bit size precedes each track body
            _need(data, pos + 3, "multitrack track size")
            end = pos + 3 + int.from_bytes(data[pos : pos + 3], "big")
            pos += 3
            _need(data, end, "multitrack track body")
        if track_id == 0:
            return _ExBody(packet_type, fourcc, pos, end)
        pos = end
    return None


def _ex_body(data: bytes, pos: int, packet_type: int, multitrack: int) -> _ExBody | None:
    if packet_type == multitrack:
        return _select_track(data, pos, multitrack)
    _need(data, pos + 4, "FourCC")
    return _ExBody(packet_type, data[pos : pos + 4], pos + 4, len(data))


def _track_zero(
    data: bytes,
    pos: int,
    packet_type: int,
    multitrack: int,
    fourccs: Mapping[bytes, str],
    what: str,
) -> tuple[_ExBody, str] | Ignored:
    """Track 0's body and codec after the ExHeader, or why the tag is ignored (no track 0,
    a FourCC we do not carry): the same for audio and video tags."""
    ex = _ex_body(data, pos, packet_type, multitrack)
    if ex is None:
        return Ignored(f"multitrack {what} without track 0")
    codec = fourccs.get(ex.fourcc)
    if codec is None:
        return Ignored(f"unsupported {what} FourCC {ex.fourcc!r}")
    return ex, codec


def _ex_dts(timestamp_ms: int, nano: int) -> int:
    """A tag's millisecond timestamp plus its ModEx nanosecond offset, in ticks."""
    return timestamp_ms * TICKS_PER_MS + nano * 9 // 100_000


def _as_bytes(body: bytes | bytearray | memoryview) -> bytes:
    return body if isinstance(body, bytes) else bytes(body)


class FlvTagParser:
    """Parses the tag bodies of one publishing session.

    The only state is the NAL length size from the last AVC/HEVC sequence header, so that
    frames from encoders using 1- or 2-byte lengths are re-framed to the canonical 4-byte
    form (and the stored record says 4) before they reach the bus.
    """

    __slots__ = ("_nal_length_size",)

    def __init__(self) -> None:
        self._nal_length_size: dict[str, int] = {Codec.H264: 4, Codec.H265: 4}

    def video(self, body: bytes | bytearray | memoryview, timestamp_ms: int) -> FlvResult:
        """Parse a video tag body (RTMP message type 9) with its timestamp in ms."""
        data = _as_bytes(body)
        if not data:
            raise MediaFormatError("empty video tag")
        if data[0] & 0x80:
            return self._enhanced_video(data, timestamp_ms)
        frame_type, codec_id = (data[0] >> 4) & 0x07, data[0] & 0x0F
        if frame_type == FRAME_COMMAND:
            return Ignored("video command frame")
        codec = _LEGACY_VIDEO_CODECS.get(codec_id)
        if codec is None:
            return Ignored(f"unsupported video codec id {codec_id}")
        _need(data, 5, "AVC video tag header")
        packet_type = data[1]
        dts = timestamp_ms * _TICKS_PER_MS
        if packet_type == 0:
            return self._video_config(codec, data[5:])
        if packet_type == 1:
            return self._video_frame(codec, frame_type, data[5:], dts, _si24(data, 2))
        if packet_type == 2:
            return EndOfSequence(TrackKind.VIDEO, codec)
        raise MediaFormatError(f"unknown AVC packet type {packet_type}")

    def _enhanced_video(self, data: bytes, timestamp_ms: int) -> FlvResult:
        frame_type = (data[0] >> 4) & 0x07
        packet_type, pos, nano = _read_modex(data, 1, data[0] & 0x0F)
        if frame_type == FRAME_COMMAND and packet_type != VideoPacketType.METADATA:
            return Ignored("video command frame")
        track = _track_zero(
            data, pos, packet_type, VideoPacketType.MULTITRACK, VIDEO_FOURCCS, "video"
        )
        if isinstance(track, Ignored):
            return track
        ex, codec = track
        dts = _ex_dts(timestamp_ms, nano)
        start, kind = ex.start, ex.packet_type
        if kind == VideoPacketType.SEQUENCE_START:
            return self._video_config(codec, data[start : ex.end])
        if kind in (VideoPacketType.CODED_FRAMES, VideoPacketType.CODED_FRAMES_X):
            cts = 0
            if kind == VideoPacketType.CODED_FRAMES and codec in _NAL_CODECS:
                _need(data, start + 3, "composition time")
                cts, start = _si24(data, start), start + 3
            return self._video_frame(codec, frame_type, data[start : ex.end], dts, cts)
        if kind == VideoPacketType.SEQUENCE_END:
            return EndOfSequence(TrackKind.VIDEO, codec)
        return Ignored(f"video packet type {kind}")

    def _video_config(self, codec: str, record: bytes) -> CodecConfig:
        config = config_from_record(codec, record)
        if codec == _H264:
            self._nal_length_size[codec] = (record[4] & 0x03) + 1
        elif codec == _H265:
            self._nal_length_size[codec] = (record[21] & 0x03) + 1
        return config

    def _video_frame(
        self, codec: str, frame_type: int, payload: bytes, dts: int, cts_ms: int
    ) -> Frame | Ignored:
        if not payload:
            return Ignored("empty video frame")
        if codec in _NAL_CODECS:
            payload = normalize_length_size(payload, self._nal_length_size[codec])
        keyframe = frame_type in (FRAME_KEY, FRAME_GENERATED_KEY)
        return Frame(_VIDEO_TRACK, codec, dts, dts + cts_ms * _TICKS_PER_MS, keyframe, payload)

    def audio(self, body: bytes | bytearray | memoryview, timestamp_ms: int) -> FlvResult:
        """Parse an audio tag body (RTMP message type 8) with its timestamp in ms."""
        data = _as_bytes(body)
        if not data:
            return Ignored("audio silence message")
        sound_format = data[0] >> 4
        if sound_format == SOUND_FORMAT_EX_HEADER:
            return self._enhanced_audio(data, timestamp_ms)
        if sound_format != SOUND_FORMAT_AAC:
            return Ignored(f"unsupported sound format {sound_format}")
        _need(data, 2, "AAC audio tag header")
        if data[1] == 0:
            return config_from_record(_AAC, data[2:])
        if data[1] == 1:
            return _audio_frame(_AAC, data[2:], timestamp_ms * _TICKS_PER_MS)
        raise MediaFormatError(f"unknown AAC packet type {data[1]}")

    def _enhanced_audio(self, data: bytes, timestamp_ms: int) -> FlvResult:
        packet_type, pos, nano = _read_modex(data, 1, data[0] & 0x0F)
        track = _track_zero(
            data, pos, packet_type, AudioPacketType.MULTITRACK, AUDIO_FOURCCS, "audio"
        )
        if isinstance(track, Ignored):
            return track
        ex, codec = track
        kind = ex.packet_type
        if kind == AudioPacketType.SEQUENCE_START:
            return config_from_record(codec, data[ex.start : ex.end])
        if kind == AudioPacketType.CODED_FRAMES:
            return _audio_frame(codec, data[ex.start : ex.end], _ex_dts(timestamp_ms, nano))
        if kind == AudioPacketType.SEQUENCE_END:
            return EndOfSequence(TrackKind.AUDIO, codec)
        return Ignored(f"audio packet type {kind}")


def _audio_frame(codec: str, payload: bytes, dts: int) -> Frame | Ignored:
    if not payload:
        return Ignored("empty audio frame")
    return Frame(_AUDIO_TRACK, codec, dts, dts, True, payload)


def parse_video_tag(body: bytes | bytearray | memoryview, timestamp_ms: int) -> FlvResult:
    """Stateless video tag parse (assumes 4-byte NAL lengths; use FlvTagParser per session)."""
    return FlvTagParser().video(body, timestamp_ms)


def parse_audio_tag(body: bytes | bytearray | memoryview, timestamp_ms: int) -> FlvResult:
    """Stateless audio tag parse."""
    return FlvTagParser().audio(body, timestamp_ms)


# ---------------------------------------------------------------------------- building


def _si24_bytes(value: int) -> bytes:
    if not -(1 << 23) <= value < (1 << 23):
        raise ValueError(f"composition offset {value} ms does not fit in SI24")
    return (value & 0xFFFFFF).to_bytes(3, "big")


def _fourcc(codec: str) -> bytes:
    fourcc = FOURCC_BY_CODEC.get(codec)
    if fourcc is None:
        raise ValueError(f"codec {codec!r} cannot be carried in FLV here")
    return fourcc


def tag_timestamp_ms(frame: Frame) -> int:
    """The RTMP/FLV timestamp (ms) to send ``frame`` with: its dts, floored to ms."""
    return frame.dts // TICKS_PER_MS


def _video_frame_body(frame: Frame) -> bytes:
    cts = frame.pts // TICKS_PER_MS - frame.dts // TICKS_PER_MS
    frame_type = FRAME_KEY if frame.keyframe else FRAME_INTER
    if frame.codec == Codec.H264:
        return b"".join((bytes((frame_type << 4 | 7, 1)), _si24_bytes(cts), frame.payload))
    fourcc = _fourcc(frame.codec)
    head = 0x80 | frame_type << 4
    if frame.codec == Codec.H265 and cts != 0:
        header = bytes((head | VideoPacketType.CODED_FRAMES,)) + fourcc + _si24_bytes(cts)
    elif frame.codec == Codec.H265 or cts == 0:
        packet = (
            VideoPacketType.CODED_FRAMES_X
            if frame.codec == Codec.H265
            else VideoPacketType.CODED_FRAMES
        )
        header = bytes((head | packet,)) + fourcc
    else:
        raise ValueError(f"{frame.codec} frames cannot carry a composition offset in FLV")
    return header + frame.payload


def _video_body(item: CodecConfig | Frame | EndOfSequence) -> bytes:
    if isinstance(item, Frame):
        return _video_frame_body(item)
    legacy = item.codec == Codec.H264
    if isinstance(item, CodecConfig):
        if legacy:
            return b"\x17\x00\x00\x00\x00" + item.extradata
        header = bytes((0x90 | VideoPacketType.SEQUENCE_START,)) + _fourcc(item.codec)
        return header + item.extradata
    if legacy:
        return b"\x17\x02\x00\x00\x00"
    return bytes((0x90 | VideoPacketType.SEQUENCE_END,)) + _fourcc(item.codec)


def _audio_body(item: CodecConfig | Frame | EndOfSequence) -> bytes:
    if item.codec == Codec.AAC and not isinstance(item, EndOfSequence):
        prefix = b"\xaf\x00" if isinstance(item, CodecConfig) else b"\xaf\x01"
        return prefix + (item.extradata if isinstance(item, CodecConfig) else item.payload)
    fourcc = _fourcc(item.codec)
    if isinstance(item, CodecConfig):
        return bytes((0x90 | AudioPacketType.SEQUENCE_START,)) + fourcc + item.extradata
    if isinstance(item, Frame):
        return bytes((0x90 | AudioPacketType.CODED_FRAMES,)) + fourcc + item.payload
    return bytes((0x90 | AudioPacketType.SEQUENCE_END,)) + fourcc


def build_tag_body(item: CodecConfig | Frame | EndOfSequence) -> bytes:
    """FLV tag body for a config, frame or end of sequence (inverse of the parser).

    Legacy format for H.264 and AAC, Enhanced RTMP for H.265/AV1/VP9/Opus. Raises
    ``ValueError`` for what FLV cannot carry (unknown codec, AV1/VP9 with pts != dts).
    """
    if item.track is TrackKind.VIDEO:
        return _video_body(item)
    if item.track is TrackKind.AUDIO:
        return _audio_body(item)
    raise ValueError(f"no FLV tag body for a {item.track.value} track")


def _codec_of_id(value: object, legacy: dict[int, str], fourccs: dict[bytes, str]) -> str | None:
    """The codec an onMetaData codec id names: a legacy FLV id or a FourCC (as the
    number E-RTMP sends, or as text), if we carry it."""
    if isinstance(value, str):
        return fourccs.get(value.encode("latin-1", "replace"))
    if not isinstance(value, float | int) or isinstance(value, bool):
        return None
    if not float(value).is_integer() or not 0 <= value < 1 << 32:  # NaN and inf too
        return None
    number = int(value)
    return legacy.get(number) or fourccs.get(number.to_bytes(4, "big"))


_LEGACY_AUDIO_CODECS: dict[int, str] = {SOUND_FORMAT_AAC: Codec.AAC}


def announced_tracks(metadata: Mapping[str, object]) -> frozenset[TrackKind] | None:
    """The tracks an ``onMetaData`` says the publisher sends and we can carry, or None
    when it says nothing about tracks. A codec id decides when present (``hasAudio``
    with MP3 would be waited for in vain); ``hasVideo``/``hasAudio`` false always win.
    Over RTMP this is the only announcement: the FLV file header is not sent."""
    tracks: set[TrackKind] = set()
    said = False
    for track, flag, key, legacy, fourccs in (
        (TrackKind.VIDEO, "hasVideo", "videocodecid", _LEGACY_VIDEO_CODECS, VIDEO_FOURCCS),
        (TrackKind.AUDIO, "hasAudio", "audiocodecid", _LEGACY_AUDIO_CODECS, AUDIO_FOURCCS),
    ):
        has, codec_id = metadata.get(flag), metadata.get(key)
        said = said or isinstance(has, bool) or codec_id is not None
        if has is False:
            continue
        if codec_id is not None:
            if _codec_of_id(codec_id, legacy, fourccs) is not None:
                tracks.add(track)
        elif has is True:
            tracks.add(track)
    return frozenset(tracks) if said else None


def codec_id_value(codec: str) -> float:
    """onMetaData videocodecid/audiocodecid: legacy ids for H.264/AAC, else the FourCC."""
    if codec == Codec.H264:
        return 7.0
    if codec == Codec.AAC:
        return float(SOUND_FORMAT_AAC)
    return float(int.from_bytes(_fourcc(codec), "big"))


def build_on_metadata(
    video: CodecConfig | None,
    audio: CodecConfig | None,
    *,
    video_kbps: float | None = None,
    audio_kbps: float | None = None,
    encoder: str = "relaycast",
) -> dict[str, float | str | bool]:
    """The ``onMetaData`` object to send after ``@setDataFrame`` when pushing a stream."""
    meta: dict[str, float | str | bool] = {}
    if video is not None:
        meta["videocodecid"] = codec_id_value(video.codec)
        if video.width and video.height:
            meta["width"] = float(video.width)
            meta["height"] = float(video.height)
        if video.fps:
            meta["framerate"] = float(video.fps)
        if video_kbps is not None:
            meta["videodatarate"] = float(video_kbps)
    if audio is not None:
        meta["audiocodecid"] = codec_id_value(audio.codec)
        if audio.sample_rate:
            meta["audiosamplerate"] = float(audio.sample_rate)
        meta["audiosamplesize"] = 16.0
        meta["stereo"] = audio.channels >= 2
        if audio_kbps is not None:
            meta["audiodatarate"] = float(audio_kbps)
    meta["encoder"] = encoder
    return meta
