"""MPEG-TS building blocks shared by the muxer and the demuxer (ISO/IEC 13818-1).

Constants, the MPEG-2 CRC, PAT/PMT sections, and PES timestamp fields. Tables are
tiny and rare (a few per second), so the CRC's byte loop runs over tens of bytes a
second, never over media payload.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .errors import MediaFormatError

PACKET_SIZE = 188
SYNC_BYTE = 0x47
PAYLOAD_SIZE = PACKET_SIZE - 4
PAT_PID = 0x0000
NULL_PID = 0x1FFF
PMT_PID = 0x1000
VIDEO_PID = 0x0100
AUDIO_PID = 0x0101
PROGRAM_NUMBER = 1

STREAM_TYPE_AAC_ADTS = 0x0F
STREAM_TYPE_H264 = 0x1B
STREAM_TYPE_H265 = 0x24

STREAM_ID_VIDEO = 0xE0
STREAM_ID_AUDIO = 0xC0

TS_MASK = (1 << 33) - 1
"""PTS/DTS/PCR base are 33-bit 90 kHz counters that wrap about every 26.5 hours."""

_TIMESTAMP = struct.Struct(">BHH")
_PCR = struct.Struct(">IH")
_TABLE_ID_PAT = 0x00
_TABLE_ID_PMT = 0x02


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc32_mpeg(data: bytes | memoryview) -> int:
    """CRC-32/MPEG-2 (poly 0x04C11DB7, init all ones, no reflection, no final xor)."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in bytes(data):
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[((crc >> 24) ^ byte) & 0xFF]
    return crc


def _section(table_id: int, extension: int, body: bytes) -> bytes:
    """A long-form PSI section (version 0, current) with its CRC."""
    length = 5 + len(body) + 4  # extension..last_section_number, body, CRC
    head = struct.pack(">BHHBBB", table_id, 0xB000 | length, extension, 0xC1, 0, 0)
    section = head + body
    return section + struct.pack(">I", crc32_mpeg(section))


def build_pat(pmt_pid: int = PMT_PID, program: int = PROGRAM_NUMBER) -> bytes:
    """The PAT section naming one program and its PMT PID."""
    return _section(_TABLE_ID_PAT, 1, struct.pack(">HH", program, 0xE000 | pmt_pid))


def build_pmt(pcr_pid: int, streams: list[tuple[int, int]], program: int = PROGRAM_NUMBER) -> bytes:
    """The PMT section: PCR PID and (stream_type, elementary PID) pairs, no descriptors."""
    body = [struct.pack(">HH", 0xE000 | pcr_pid, 0xF000)]
    body += [struct.pack(">BHH", kind, 0xE000 | pid, 0xF000) for kind, pid in streams]
    return _section(_TABLE_ID_PMT, program, b"".join(body))


def _checked_section(payload: bytes | memoryview, table_id: int) -> bytes:
    """The section starting at the pointer field of a PSI packet payload, CRC-checked."""
    if not payload:
        raise MediaFormatError("empty PSI payload")
    start = 1 + payload[0]
    if start + 3 > len(payload):
        raise MediaFormatError("PSI pointer field beyond the packet")
    if payload[start] != table_id:
        raise MediaFormatError(f"expected table id {table_id}, got {payload[start]}")
    length = ((payload[start + 1] & 0x0F) << 8) | payload[start + 2]
    end = start + 3 + length
    if length < 9 or end > len(payload):
        raise MediaFormatError("PSI section truncated (or spans packets, unsupported)")
    section = bytes(payload[start:end])
    if crc32_mpeg(section) != 0:
        raise MediaFormatError("PSI section CRC mismatch")
    return section


def parse_pat(payload: bytes | memoryview) -> dict[int, int]:
    """program_number -> PMT PID from a PAT packet payload (network PID entries skipped)."""
    section = _checked_section(payload, _TABLE_ID_PAT)
    programs: dict[int, int] = {}
    for pos in range(8, len(section) - 4 - 3, 4):
        program, pid = struct.unpack_from(">HH", section, pos)
        if program != 0:
            programs[program] = pid & 0x1FFF
    return programs


@dataclass(frozen=True, slots=True)
class Pmt:
    """A parsed PMT: its program, PCR PID and (stream_type, PID) per elementary stream."""

    program: int
    pcr_pid: int
    streams: tuple[tuple[int, int], ...]


def parse_pmt(payload: bytes | memoryview) -> Pmt:
    """Parse a PMT packet payload (descriptors are skipped)."""
    section = _checked_section(payload, _TABLE_ID_PMT)
    end = len(section) - 4
    if end < 12:
        raise MediaFormatError("PMT too short")
    program = (section[3] << 8) | section[4]
    pcr_pid, info_len = struct.unpack_from(">HH", section, 8)
    pos = 12 + (info_len & 0x0FFF)
    streams: list[tuple[int, int]] = []
    while pos + 5 <= end:
        kind, pid, es_len = struct.unpack_from(">BHH", section, pos)
        streams.append((kind, pid & 0x1FFF))
        pos += 5 + (es_len & 0x0FFF)
    return Pmt(program, pcr_pid & 0x1FFF, tuple(streams))


def encode_timestamp(prefix: int, ts: int) -> bytes:
    """A 5-byte PES PTS/DTS field (``prefix`` 2 = PTS only, 3 = PTS with DTS, 1 = DTS)."""
    ts &= TS_MASK
    return _TIMESTAMP.pack(
        (prefix << 4) | ((ts >> 29) & 0x0E) | 1,
        ((ts >> 14) & 0xFFFE) | 1,
        ((ts << 1) & 0xFFFE) | 1,
    )


def decode_timestamp(data: bytes | memoryview, pos: int) -> int:
    """The 33-bit value of the 5-byte PTS/DTS field at ``data[pos:]`` (markers ignored)."""
    if pos + 5 > len(data):
        raise MediaFormatError("truncated PES timestamp")
    first, mid, low = _TIMESTAMP.unpack_from(data, pos)
    return int(((first & 0x0E) << 29) | ((mid >> 1) << 15) | (low >> 1))


def encode_pcr(base: int) -> bytes:
    """The 6-byte PCR field of an adaptation field (extension 0, reserved bits set)."""
    value = ((base & TS_MASK) << 15) | (0x3F << 9)
    return struct.pack(">IH", value >> 16, value & 0xFFFF)


def decode_pcr(data: bytes | memoryview, pos: int) -> int:
    """The PCR base (90 kHz) of the 6-byte field at ``data[pos:]``."""
    high, low = _PCR.unpack_from(data, pos)
    return int(((high << 16) | low) >> 15)
