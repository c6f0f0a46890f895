"""Fragmented MP4 (ISO-BMFF / CMAF) writer: one init segment, then moof+mdat fragments.

HLS (and LL-HLS parts) are served as an init segment (``ftyp`` + ``moov`` describing the
tracks with empty sample tables) followed by fragments that each carry their own sample
table (``moof``) and data (``mdat``). Everything here is built with ``struct`` and
``bytes.join``: a fragment costs one small pack per sample and one join, never a Python
loop over payload bytes.

Timestamps come in as ``Frame`` ticks (90 kHz). Video tracks keep that timescale; audio
tracks use their sample rate so every AAC frame is exactly 1024 ticks long and players
never see rounding drift. Callers pass an ``offset`` (ticks) that rebases the stream's
timestamps so decode times stay non-negative.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from . import aac, h264, h265, opus
from .errors import MediaFormatError
from .frame import TIMEBASE, Codec, CodecConfig, Frame, TrackKind

SUPPORTED_CODECS = frozenset({Codec.H264, Codec.H265, Codec.AAC})
"""What fMP4 output carries for HLS (live and VOD), whose players expect these."""
FILE_CODECS = SUPPORTED_CODECS | {Codec.AV1, Codec.OPUS}
"""What an fMP4 file (a recording) may carry: MP4 players and FFmpeg read AV1 and Opus."""
OPUS_FRAME = 960  # 20 ms at 48 kHz: the usual Opus packet, until the stream shows its own

_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)
_LANGUAGE_UND = 0x55C4  # ISO-639-2 "und" packed as three 5-bit letters
_SYNC_FLAGS = 0x02000000  # sample_depends_on = 2 (I-frame / audio)
_NON_SYNC_FLAGS = 0x01010000  # sample_depends_on = 1, sample_is_non_sync_sample = 1

_TFHD_BASE_IS_MOOF = 0x020000
_TFHD_DEFAULT_FLAGS = 0x000020
_TRUN_DATA_OFFSET = 0x000001
_TRUN_DURATION = 0x000100
_TRUN_SIZE = 0x000200
_TRUN_FLAGS = 0x000400
_TRUN_CTS = 0x000800
_VIDEO_TRUN = _TRUN_DATA_OFFSET | _TRUN_DURATION | _TRUN_SIZE | _TRUN_FLAGS | _TRUN_CTS
_AUDIO_TRUN = _TRUN_DATA_OFFSET | _TRUN_DURATION | _TRUN_SIZE

_BOX_HEADER = struct.Struct(">I4s")
_FULL_BOX_HEADER = struct.Struct(">I4sI")
_TFHD_SIZE = 16
_TFDT_SIZE = 20
_TRUN_HEAD_SIZE = 20
_MFHD_SIZE = 16


def box(kind: bytes, *payload: bytes) -> bytes:
    """An ISO-BMFF box: 32-bit size, 4-character type, payload."""
    return _BOX_HEADER.pack(8 + sum(map(len, payload)), kind) + b"".join(payload)


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    """A FullBox: a box whose payload starts with version (8 bits) and flags (24 bits)."""
    size = 12 + sum(map(len, payload))
    return _FULL_BOX_HEADER.pack(size, kind, (version << 24) | flags) + b"".join(payload)


@dataclass(slots=True)
class Fmp4Track:
    """One track of the file: its id, timescale and the expected sample duration.

    ``default_duration`` (in the track timescale) stands in for the duration of the last
    sample of a fragment when the caller does not know where the next sample starts; it
    is refreshed from each fragment's average so it follows the real stream.
    """

    track_id: int
    config: CodecConfig
    timescale: int
    default_duration: int

    @property
    def kind(self) -> TrackKind:
        return self.config.track

    def to_timescale(self, ticks: int) -> int:
        """Convert 90 kHz ticks to this track's timescale (floor, exact for video)."""
        if self.timescale == TIMEBASE:
            return ticks
        return ticks * self.timescale // TIMEBASE


def _expected_duration(config: CodecConfig, timescale: int) -> int:
    """Duration of one sample before any has been seen: a frame at the declared rate,
    or one AAC frame (1024 samples, twice that at the SBR output rate)."""
    if config.codec == Codec.OPUS:
        return OPUS_FRAME
    if config.track is TrackKind.AUDIO:
        asc = aac.parse_asc(config.extradata)
        scale = (asc.extension_sample_rate or asc.sample_rate) // asc.sample_rate
        return asc.frame_length * max(1, scale)
    fps = config.fps if config.fps and 1 <= config.fps <= 300 else 30.0
    return max(1, round(timescale / fps))


def make_track(track_id: int, config: CodecConfig) -> Fmp4Track:
    """Describe ``config`` as an fMP4 track; ValueError for codecs fMP4 output lacks."""
    if config.codec not in FILE_CODECS:
        raise ValueError(f"fMP4 output does not support {config.codec!r}")
    if config.track is TrackKind.AUDIO:
        if config.sample_rate <= 0:
            raise MediaFormatError("audio track without a sample rate")
        timescale = config.sample_rate
    else:
        timescale = TIMEBASE
    return Fmp4Track(track_id, config, timescale, _expected_duration(config, timescale))


# --------------------------------------------------------------------------- init segment


def ftyp() -> bytes:
    """File type: iso5 (tfdt/default-base-is-moof), compatible with iso6 and mp41."""
    return box(b"ftyp", b"iso5", struct.pack(">I", 512), b"iso5iso6mp41")


def styp() -> bytes:
    """Segment type box some packagers put at the start of each media segment."""
    return box(b"styp", b"msdh", struct.pack(">I", 0), b"msdhmsixiso5")


def _mvhd(next_track_id: int) -> bytes:
    return full_box(
        b"mvhd",
        0,
        0,
        struct.pack(">IIII", 0, 0, 1000, 0),  # creation, modification, timescale, duration
        struct.pack(">IH", 0x00010000, 0x0100),  # rate 1.0, volume 1.0
        bytes(10),
        _MATRIX,
        bytes(24),
        struct.pack(">I", next_track_id),
    )


def _tkhd(track: Fmp4Track) -> bytes:
    config = track.config
    audio = config.track is TrackKind.AUDIO
    return full_box(
        b"tkhd",
        0,
        0x000003,  # track_enabled | track_in_movie
        struct.pack(">IIIII", 0, 0, track.track_id, 0, 0),
        bytes(8),
        struct.pack(">hhhH", 0, 0, 0x0100 if audio else 0, 0),
        _MATRIX,
        struct.pack(">II", config.width << 16, config.height << 16),
    )


def _mdhd(track: Fmp4Track) -> bytes:
    return full_box(
        b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, track.timescale, 0, _LANGUAGE_UND, 0)
    )


def _hdlr(audio: bool) -> bytes:
    handler, name = (b"soun", b"SoundHandler\x00") if audio else (b"vide", b"VideoHandler\x00")
    return full_box(b"hdlr", 0, 0, struct.pack(">I", 0), handler, bytes(12), name)


def _dinf() -> bytes:
    url = full_box(b"url ", 0, 1)  # flag 1: media data is in this file
    return box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), url))


def _visual_entry(kind: bytes, config: CodecConfig, record_box: bytes) -> bytes:
    return box(
        kind,
        bytes(6),
        struct.pack(">H", 1),  # data_reference_index
        bytes(16),
        struct.pack(">HHIIIH", config.width, config.height, 0x00480000, 0x00480000, 0, 1),
        bytes(32),  # compressorname
        struct.pack(">Hh", 0x0018, -1),
        record_box,
    )


def _descriptor(tag: int, *body: bytes) -> bytes:
    """An MPEG-4 descriptor with the length in 7-bit groups (ISO/IEC 14496-1 8.3.3)."""
    payload = b"".join(body)
    size = len(payload)
    groups = [size & 0x7F]
    size >>= 7
    while size:
        groups.append(0x80 | (size & 0x7F))
        size >>= 7
    return bytes((tag, *reversed(groups))) + payload


def _esds(track: Fmp4Track) -> bytes:
    decoder_config = _descriptor(
        0x04,
        struct.pack(">BB", 0x40, 0x15),  # MPEG-4 audio, audio stream
        struct.pack(">BHII", 0, 0, 0, 0),  # bufferSizeDB (24 bits), max and avg bitrate
        _descriptor(0x05, track.config.extradata),
    )
    es = _descriptor(
        0x03, struct.pack(">HB", track.track_id, 0), decoder_config, _descriptor(0x06, b"\x02")
    )
    return full_box(b"esds", 0, 0, es)


def _audio_entry(track: Fmp4Track) -> bytes:
    config = track.config
    channels = config.channels or 2
    rate = config.sample_rate if config.sample_rate < 0x10000 else 0
    return box(
        b"mp4a",
        bytes(6),
        struct.pack(">H", 1),
        bytes(8),
        struct.pack(">HHHHI", channels, 16, 0, 0, rate << 16),
        _esds(track),
    )


def _sample_entry(track: Fmp4Track) -> bytes:
    config = track.config
    if config.codec == Codec.H264:
        record = h264.with_length_size_4(config.extradata)
        return _visual_entry(b"avc1", config, box(b"avcC", record))
    if config.codec == Codec.H265:
        record = h265.with_length_size_4(config.extradata)
        return _visual_entry(b"hvc1", config, box(b"hvcC", record))
    if config.codec == Codec.AV1:
        return _visual_entry(b"av01", config, box(b"av1C", config.extradata))
    if config.codec == Codec.OPUS:
        return _opus_entry(track)
    return _audio_entry(track)


def _opus_entry(track: Fmp4Track) -> bytes:
    """``Opus`` sample entry with its ``dOps`` (Opus in ISO-BMFF, 4.3); an empty
    OpusHead means plain stereo (the E-RTMP rule)."""
    config = track.config
    header = (
        opus.parse_opus_head(config.extradata)
        if config.extradata
        else opus.OpusHeader(channels=config.channels or 2, pre_skip=0)
    )
    return box(
        b"Opus",
        bytes(6),
        struct.pack(">H", 1),
        bytes(8),
        struct.pack(">HHHHI", header.channels, 16, 0, 0, opus.OPUS_SAMPLE_RATE << 16),
        box(b"dOps", opus.build_dops(header)),
    )


def _stbl(track: Fmp4Track) -> bytes:
    empty = struct.pack(">I", 0)
    return box(
        b"stbl",
        full_box(b"stsd", 0, 0, struct.pack(">I", 1), _sample_entry(track)),
        full_box(b"stts", 0, 0, empty),
        full_box(b"stsc", 0, 0, empty),
        full_box(b"stsz", 0, 0, empty, empty),
        full_box(b"stco", 0, 0, empty),
    )


def _trak(track: Fmp4Track) -> bytes:
    audio = track.kind is TrackKind.AUDIO
    media_header = full_box(b"smhd", 0, 0, bytes(4)) if audio else full_box(b"vmhd", 0, 1, bytes(8))
    minf = box(b"minf", media_header, _dinf(), _stbl(track))
    mdia = box(b"mdia", _mdhd(track), _hdlr(audio), minf)
    return box(b"trak", _tkhd(track), mdia)


def _trex(track: Fmp4Track) -> bytes:
    return full_box(b"trex", 0, 0, struct.pack(">IIIII", track.track_id, 1, 0, 0, 0))


def init_segment(tracks: Sequence[Fmp4Track]) -> bytes:
    """ftyp + moov describing ``tracks`` with empty sample tables and an mvex."""
    moov = box(
        b"moov",
        _mvhd(len(tracks) + 1),
        *(_trak(t) for t in tracks),
        box(b"mvex", *(_trex(t) for t in tracks)),
    )
    return ftyp() + moov


# --------------------------------------------------------------------------- fragments


def _sample_table(
    track: Fmp4Track, frames: Sequence[Frame], end_dts: int | None, offset: int
) -> tuple[bytes, int, int]:
    """Packed trun sample entries, the first decode time and the payload byte count.

    Durations come from the next sample's decode time; the last one from ``end_dts``
    (where the next fragment starts) or the track's running default.
    """
    conv = track.to_timescale
    times = [conv(f.dts + offset) for f in frames]
    count = len(times)
    if count > 1:
        track.default_duration = max(1, (times[-1] - times[0]) // (count - 1))
    last = conv(end_dts + offset) - times[-1] if end_dts is not None else 0
    ends = [*times[1:], times[-1] + (last if last > 0 else track.default_duration)]
    size = 0
    values: list[int] = []
    if track.kind is TrackKind.VIDEO:
        for frame, start, end in zip(frames, times, ends, strict=True):
            length = len(frame.payload)
            size += length
            flags = _SYNC_FLAGS if frame.keyframe else _NON_SYNC_FLAGS
            cts = conv(frame.pts + offset) - start
            values += (max(0, end - start), length, flags, cts)
        packed = struct.pack(">" + "IIIi" * count, *values)
    else:
        for frame, start, end in zip(frames, times, ends, strict=True):
            length = len(frame.payload)
            size += length
            values += (max(0, end - start), length)
        packed = struct.pack(">" + "II" * count, *values)
    return packed, times[0], size


def _traf(track: Fmp4Track, table: bytes, count: int, base_time: int, data_offset: int) -> bytes:
    video = track.kind is TrackKind.VIDEO
    if video:
        tfhd = full_box(b"tfhd", 0, _TFHD_BASE_IS_MOOF, struct.pack(">I", track.track_id))
    else:
        tfhd = full_box(
            b"tfhd",
            0,
            _TFHD_BASE_IS_MOOF | _TFHD_DEFAULT_FLAGS,
            struct.pack(">II", track.track_id, _SYNC_FLAGS),
        )
    tfdt = full_box(b"tfdt", 1, 0, struct.pack(">Q", max(0, base_time)))
    trun_flags = _VIDEO_TRUN if video else _AUDIO_TRUN
    trun = full_box(b"trun", 1, trun_flags, struct.pack(">Ii", count, data_offset), table)
    return box(b"traf", tfhd, tfdt, trun)


def _traf_size(track: Fmp4Track, table: bytes) -> int:
    tfhd = _TFHD_SIZE + (0 if track.kind is TrackKind.VIDEO else 4)
    return 8 + tfhd + _TFDT_SIZE + _TRUN_HEAD_SIZE + len(table)


class Fmp4Muxer:
    """Init segment and fragments for a fixed set of tracks (video first, then audio).

    Holds the fragment sequence number and each track's running sample duration, so one
    muxer serves one init segment's worth of fragments; a codec change needs a new one.
    """

    __slots__ = ("_sequence", "tracks")

    def __init__(self, configs: Sequence[CodecConfig]) -> None:
        ordered = sorted(configs, key=lambda c: c.track is not TrackKind.VIDEO)
        if not ordered or len({c.track for c in ordered}) != len(ordered):
            raise ValueError("fMP4 needs one config per track and at least one track")
        self.tracks = tuple(make_track(i + 1, c) for i, c in enumerate(ordered))
        self._sequence = 0

    @property
    def sequence(self) -> int:
        """Sequence number of the last fragment written (0 before the first)."""
        return self._sequence

    def init_segment(self) -> bytes:
        """The ftyp + moov every fragment of this muxer depends on."""
        return init_segment(self.tracks)

    def fragment(
        self,
        samples: Mapping[TrackKind, Sequence[Frame]],
        *,
        end_dts: Mapping[TrackKind, int] | None = None,
        offset: int = 0,
    ) -> bytes:
        """One moof+mdat with the given frames of each track (decode order per track).

        ``end_dts`` gives, per track, the decode time (ticks, before ``offset``) where the
        following fragment starts, which fixes the last sample's duration exactly; tracks
        without one use their running average. Returns ``b""`` when there are no frames.
        """
        return b"".join(self.fragment_pieces(samples, end_dts=end_dts, offset=offset))

    def fragment_pieces(
        self,
        samples: Mapping[TrackKind, Sequence[Frame]],
        *,
        end_dts: Mapping[TrackKind, int] | None = None,
        offset: int = 0,
    ) -> list[bytes]:
        """``fragment`` as the pieces to write in order (the moof with the mdat header,
        then each payload), empty when there are no frames: a writer with ``writev``
        does not join a second of media into one new object (fresh memory, page faults
        and a copy, for every fragment)."""
        runs = [(t, samples.get(t.kind, ())) for t in self.tracks]
        runs = [(t, frames) for t, frames in runs if frames]
        if not runs:
            return []
        ends = end_dts or {}
        tables = [(t, f, *_sample_table(t, f, ends.get(t.kind), offset)) for t, f in runs]
        moof_size = 8 + _MFHD_SIZE + sum(_traf_size(t, table) for t, _, table, _, _ in tables)
        self._sequence += 1
        trafs: list[bytes] = []
        data: list[bytes] = []
        data_offset = moof_size + 8
        for track, frames, table, base_time, size in tables:
            trafs.append(_traf(track, table, len(frames), base_time, data_offset))
            data_offset += size
            data += [f.payload for f in frames]
        mfhd = full_box(b"mfhd", 0, 0, struct.pack(">I", self._sequence))
        moof = box(b"moof", mfhd, *trafs)
        mdat_size = data_offset - moof_size
        return [moof + _BOX_HEADER.pack(mdat_size, b"mdat"), *data]
