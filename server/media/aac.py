"""AAC: AudioSpecificConfig (FLV/MP4 configuration) and ADTS headers (MPEG-TS framing).

FLV and fMP4 carry raw AAC access units plus one AudioSpecificConfig; MPEG-TS carries
each access unit behind a 7-byte ADTS header. Converting between the two is all a relay
does with AAC, so this module holds exactly that.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .bits import BitReader, BitWriter
from .errors import MediaFormatError
from .frame import Codec, CodecConfig, TrackKind

SAMPLE_RATES = (
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
)  # fmt: skip
"""Sampling frequencies by samplingFrequencyIndex (ISO/IEC 14496-3 table 1.18)."""

AOT_AAC_LC = 2
AOT_SBR = 5
AOT_PS = 29
_AOT_ESCAPE = 31
_EXPLICIT_RATE = 15
# Channel counts by channelConfiguration; 0 means "described by a PCE" (unknown here).
_CHANNELS = (0, 1, 2, 3, 4, 5, 6, 8, 0, 0, 0, 7, 8, 24, 8, 0)
# Object types whose GASpecificConfig starts with frameLengthFlag.
_GA_OBJECT_TYPES = frozenset({1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23})
ADTS_HEADER_SIZE = 7
_ADTS_MAX_FRAME = (1 << 13) - 1


@dataclass(frozen=True, slots=True)
class AudioSpecificConfig:
    """The parts of an AudioSpecificConfig a relay uses.

    ``object_type`` is what was signalled first (2 = AAC-LC, 5 = HE-AAC, 29 = HE-AACv2 and
    what CODECS ``mp4a.40.N`` names); ``core_object_type`` and ``sample_rate`` describe the
    core AAC layer, which is what ADTS headers must carry.
    """

    object_type: int
    core_object_type: int
    sample_rate: int
    channel_config: int
    channels: int
    extension_sample_rate: int = 0
    frame_length: int = 1024


def _read_object_type(r: BitReader) -> int:
    aot = r.u(5)
    return 32 + r.u(6) if aot == _AOT_ESCAPE else aot


def _read_sample_rate(r: BitReader) -> int:
    index = r.u(4)
    if index == _EXPLICIT_RATE:
        return r.u(24)
    if index >= len(SAMPLE_RATES):
        raise MediaFormatError(f"reserved AAC sampling frequency index {index}")
    return SAMPLE_RATES[index]


def parse_asc(data: bytes) -> AudioSpecificConfig:
    """Parse an AudioSpecificConfig; trailing extension data is accepted and ignored."""
    if len(data) < 2:
        raise MediaFormatError("AudioSpecificConfig too short")
    r = BitReader(data)
    object_type = _read_object_type(r)
    if object_type == 0:
        raise MediaFormatError("AudioSpecificConfig with object type 0")
    sample_rate = _read_sample_rate(r)
    channel_config = r.u(4)
    core_type, extension_rate = object_type, 0
    if object_type in (AOT_SBR, AOT_PS):
        extension_rate = _read_sample_rate(r)
        core_type = _read_object_type(r)
    frame_length = 1024
    if core_type in _GA_OBJECT_TYPES and r.remaining >= 1 and r.flag():
        frame_length = 960
    if sample_rate == 0:
        raise MediaFormatError("AudioSpecificConfig with sample rate 0")
    return AudioSpecificConfig(
        object_type=object_type,
        core_object_type=core_type,
        sample_rate=sample_rate,
        channel_config=channel_config,
        channels=_CHANNELS[channel_config],
        extension_sample_rate=extension_rate,
        frame_length=frame_length,
    )


def _write_sample_rate(w: BitWriter, rate: int) -> None:
    if rate in SAMPLE_RATES:
        w.u(4, SAMPLE_RATES.index(rate))
    else:
        w.u(4, _EXPLICIT_RATE)
        w.u(24, rate)


def build_asc(object_type: int, sample_rate: int, channel_config: int) -> bytes:
    """Build a plain AudioSpecificConfig (GASpecificConfig with all flags zero)."""
    if not 0 < object_type < 31 or not 0 <= channel_config < 16:
        raise ValueError("object type must be 1-30 and channel configuration 0-15")
    w = BitWriter()
    w.u(5, object_type)
    _write_sample_rate(w, sample_rate)
    w.u(4, channel_config)
    w.u(3, 0)  # frameLengthFlag, dependsOnCoreCoder, extensionFlag
    return w.to_bytes()


def config_from_asc(data: bytes) -> CodecConfig:
    """CodecConfig of an AAC track from its AudioSpecificConfig."""
    asc = parse_asc(data)
    return CodecConfig(
        track=TrackKind.AUDIO,
        codec=Codec.AAC,
        extradata=bytes(data),
        profile=asc.object_type,
        sample_rate=asc.extension_sample_rate or asc.sample_rate,
        channels=asc.channels,
    )


@dataclass(frozen=True, slots=True)
class AdtsHeader:
    """Fields of one ADTS header; ``frame_length`` includes the header itself."""

    object_type: int
    sample_rate: int
    channel_config: int
    frame_length: int
    header_size: int
    raw_blocks: int

    @property
    def payload_size(self) -> int:
        """Bytes of raw AAC data after the header."""
        return self.frame_length - self.header_size


def parse_adts_header(data: bytes, pos: int = 0) -> AdtsHeader:
    """Parse the ADTS header at ``data[pos:]``."""
    if len(data) - pos < ADTS_HEADER_SIZE:
        raise MediaFormatError("truncated ADTS header")
    b1, b2, b3, b4, b5, b6 = data[pos + 1 : pos + 7]
    if data[pos] != 0xFF or b1 & 0xF6 != 0xF0:
        raise MediaFormatError("missing ADTS sync word")
    index = (b2 >> 2) & 0x0F
    if index >= len(SAMPLE_RATES):
        raise MediaFormatError(f"reserved ADTS sampling frequency index {index}")
    header_size = 7 if b1 & 0x01 else 9
    frame_length = ((b3 & 0x03) << 11) | (b4 << 3) | (b5 >> 5)
    if frame_length < header_size:
        raise MediaFormatError("ADTS frame length shorter than its header")
    return AdtsHeader(
        object_type=(b2 >> 6) + 1,
        sample_rate=SAMPLE_RATES[index],
        channel_config=((b2 & 0x01) << 2) | (b3 >> 6),
        frame_length=frame_length,
        header_size=header_size,
        raw_blocks=(b6 & 0x03) + 1,
    )


def build_adts_header(asc: AudioSpecificConfig, payload_size: int) -> bytes:
    """7-byte ADTS header (no CRC) for one raw access unit, from the track's ASC.

    ADTS can only describe core object types 1-4 at a table sampling rate with a
    channel configuration; anything else cannot go into MPEG-TS this way.
    """
    if not 1 <= asc.core_object_type <= 4:
        raise MediaFormatError(f"object type {asc.core_object_type} cannot be put in ADTS")
    if asc.sample_rate not in SAMPLE_RATES or not 0 < asc.channel_config < 8:
        raise MediaFormatError("ADTS needs a table sample rate and channel configuration 1-7")
    length = payload_size + ADTS_HEADER_SIZE
    if length > _ADTS_MAX_FRAME:
        raise MediaFormatError("AAC access unit too large for ADTS")
    index = SAMPLE_RATES.index(asc.sample_rate)
    cc = asc.channel_config
    return bytes(
        (
            0xFF,
            0xF1,  # MPEG-4, layer 0, no CRC
            ((asc.core_object_type - 1) << 6) | (index << 2) | (cc >> 2),
            ((cc & 0x03) << 6) | (length >> 11),
            (length >> 3) & 0xFF,
            ((length & 0x07) << 5) | 0x1F,  # buffer fullness 0x7FF (VBR)
            0xFC,
        )
    )


def iter_adts(data: bytes) -> Iterator[tuple[AdtsHeader, bytes]]:
    """Split a buffer of back-to-back ADTS frames (an MPEG-TS audio PES) into raw units."""
    pos = 0
    while pos < len(data):
        header = parse_adts_header(data, pos)
        end = pos + header.frame_length
        if end > len(data):
            raise MediaFormatError("truncated ADTS frame")
        yield header, data[pos + header.header_size : end]
        pos = end


def asc_from_adts(header: AdtsHeader) -> bytes:
    """The AudioSpecificConfig equivalent to an ADTS header (to configure FLV/fMP4 output)."""
    return build_asc(header.object_type, header.sample_rate, header.channel_config)
