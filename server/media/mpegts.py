"""MPEG-TS muxer (HLS TS segments, SRT output) and the demuxer re-exported for ingest.

Mux: one program (PAT -> PMT) with up to one video PID (H.264 or H.265 in Annex B with
an access unit delimiter, parameter sets before every keyframe) and one audio PID (AAC
in ADTS). The PCR rides on the video PID (audio when there is no video). Each frame is
one PES; the PES is cut into 188-byte packets by slicing a memoryview, and only the
first and last packet of a PES are built individually (adaptation field, stuffing).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from . import aac, h264, h265
from .frame import Codec, CodecConfig, Frame, TrackKind
from .mpegts_demux import DemuxStats, TsDemuxer, TsItem
from .mpegts_psi import (
    AUDIO_PID,
    PAYLOAD_SIZE,
    PMT_PID,
    STREAM_ID_AUDIO,
    STREAM_ID_VIDEO,
    STREAM_TYPE_AAC_ADTS,
    STREAM_TYPE_H264,
    STREAM_TYPE_H265,
    SYNC_BYTE,
    TS_MASK,
    VIDEO_PID,
    build_pat,
    build_pmt,
    encode_pcr,
    encode_timestamp,
)
from .nal import START_CODE, length_prefixed_spans

__all__ = ["DemuxStats", "TsDemuxer", "TsItem", "TsMuxer"]

TS_SHIFT = 63_000
"""PTS/DTS are written 0.7 s ahead of the PCR (= dts), the decoder buffering margin
FFmpeg's muxer also uses; callers rebase so that ``dts + offset`` is never negative."""

TABLE_INTERVAL = 45_000
"""PAT/PMT are repeated before each video keyframe and at least every 0.5 s."""

_AF_PCR = 0x10
_AF_RANDOM_ACCESS = 0x40
_PES_HEADER = struct.Struct(">3sBHBBB")

_Buffer = bytes | memoryview


def _ts_header(pid: int, start: bool, has_af: bool, cc: int) -> bytes:
    flags = 0x30 if has_af else 0x10  # adaptation_field_control: 3 = AF + payload, 1 = payload
    return struct.pack(">BHB", SYNC_BYTE, (0x4000 if start else 0) | pid, flags | cc)


def _packet(pid: int, start: bool, cc: int, af_body: bytes | None, payload: _Buffer) -> bytes:
    """One 188-byte packet; the adaptation field absorbs any room the payload leaves."""
    room = PAYLOAD_SIZE - len(payload)
    if af_body is None and room == 0:
        return _ts_header(pid, start, False, cc) + payload
    if af_body is None:
        af = b"\x00" if room == 1 else bytes((room - 1, 0)) + b"\xff" * (room - 2)
    else:
        af = bytes((room - 1,)) + af_body + b"\xff" * (room - 1 - len(af_body))
    return b"".join((_ts_header(pid, start, True, cc), af, payload))


def _psi_packet(pid: int, cc: int, section: bytes) -> bytes:
    body = b"\x00" + section  # pointer_field 0: the section starts right away
    return _ts_header(pid, True, False, cc) + body + b"\xff" * (PAYLOAD_SIZE - len(body))


def _pes_header(stream_id: int, pts: int, dts: int, payload_size: int | None) -> bytes:
    """PES header with PTS (and DTS when it differs); length 0 = unbounded (video)."""
    if pts == dts:
        fields, flags = encode_timestamp(2, pts), 0x80
    else:
        fields, flags = encode_timestamp(3, pts) + encode_timestamp(1, dts), 0xC0
    length = 0 if payload_size is None else 3 + len(fields) + payload_size
    if length > 0xFFFF:
        length = 0
    # 0x84: marker bits '10' + data_alignment_indicator (a PES starts an access unit)
    return _PES_HEADER.pack(b"\x00\x00\x01", stream_id, length, 0x84, flags, len(fields)) + fields


class TsMuxer:
    """Frames in, 188-byte packets out, for one video and/or one audio track.

    Continuity counters persist across calls, so consecutive outputs concatenate into
    one valid transport stream (an HLS TS segment or an SRT payload stream).
    """

    __slots__ = (
        "_asc",
        "_aud",
        "_aud_type",
        "_cc",
        "_last_tables",
        "_parameter_sets",
        "_pat",
        "_plain",
        "_pmt",
        "_tables_pids",
        "audio",
        "pcr_pid",
        "video",
    )

    def __init__(self, configs: Sequence[CodecConfig]) -> None:
        self.video: CodecConfig | None = None
        self.audio: CodecConfig | None = None
        streams: list[tuple[int, int]] = []
        for config in configs:
            if config.track is TrackKind.VIDEO and self.video is None:
                streams.append((self._setup_video(config), VIDEO_PID))
            elif config.track is TrackKind.AUDIO and self.audio is None:
                streams.append((self._setup_audio(config), AUDIO_PID))
        if not streams:
            raise ValueError("MPEG-TS output needs an H.264/H.265 or AAC track")
        self.pcr_pid = VIDEO_PID if self.video is not None else AUDIO_PID
        self._pat = build_pat()
        self._pmt = build_pmt(self.pcr_pid, streams)
        pids = [0, PMT_PID] + [pid for _, pid in streams]
        self._cc = dict.fromkeys(pids, 0)
        self._plain = {pid: [_ts_header(pid, False, False, cc) for cc in range(16)] for pid in pids}
        self._last_tables: int | None = None

    def _setup_video(self, config: CodecConfig) -> int:
        if config.codec == Codec.H264:
            avcc = h264.parse_avcc(config.extradata)
            sets, self._aud, self._aud_type = (*avcc.sps, *avcc.pps), h264.AUD_NAL, h264.NAL_AUD
            stream_type = STREAM_TYPE_H264
        elif config.codec == Codec.H265:
            hvcc = h265.parse_hvcc(config.extradata)
            kinds = (h265.NAL_VPS, h265.NAL_SPS, h265.NAL_PPS)
            sets = tuple(n for k in kinds for n in hvcc.nals_of_type(k))
            self._aud, self._aud_type = h265.AUD_NAL, h265.NAL_AUD
            stream_type = STREAM_TYPE_H265
        else:
            raise ValueError(f"MPEG-TS output does not support {config.codec!r}")
        self._parameter_sets = b"".join(START_CODE + s for s in sets)
        self.video = config
        return stream_type

    def _setup_audio(self, config: CodecConfig) -> int:
        if config.codec != Codec.AAC:
            raise ValueError(f"MPEG-TS output does not support {config.codec!r}")
        self._asc = aac.parse_asc(config.extradata)
        aac.build_adts_header(self._asc, 0)  # MediaFormatError now if ADTS cannot carry it
        self.audio = config
        return STREAM_TYPE_AAC_ADTS

    def tables(self) -> bytes:
        """PAT + PMT packets (each call advances their continuity counters)."""
        pat_cc, pmt_cc = self._cc[0], self._cc[PMT_PID]
        self._cc[0], self._cc[PMT_PID] = (pat_cc + 1) & 15, (pmt_cc + 1) & 15
        return _psi_packet(0, pat_cc, self._pat) + _psi_packet(PMT_PID, pmt_cc, self._pmt)

    def mux(self, frame: Frame, offset: int = 0, *, with_tables: bool = False) -> bytes:
        """Packets for one frame (``dts + offset`` must be >= 0), PAT/PMT first when due.

        Tables go out when asked (``with_tables``, e.g. at an HLS segment start), before
        every video keyframe and at least every 0.5 s. Frames of a track this muxer was
        not configured with raise ValueError.
        """
        dts = frame.dts + offset
        video = frame.track is TrackKind.VIDEO
        due = self._last_tables is None or dts - self._last_tables >= TABLE_INTERVAL
        head = b""
        if with_tables or due or (video and frame.keyframe):
            head = self.tables()
            self._last_tables = dts
        if video and self.video is not None:
            return head + self._video(frame, dts, frame.pts + offset)
        if frame.track is TrackKind.AUDIO and self.audio is not None:
            return head + self._audio(frame, dts)
        raise ValueError(f"no {frame.track.value} track in this MPEG-TS muxer")

    def _video(self, frame: Frame, dts: int, pts: int) -> bytes:
        payload = frame.payload
        view = memoryview(payload)
        parts: list[_Buffer] = [START_CODE, self._aud]
        if frame.keyframe:
            parts.append(self._parameter_sets)
        aud_type = self._aud_type
        h264_types = aud_type == h264.NAL_AUD
        for start, end in length_prefixed_spans(payload):
            if end == start:
                continue
            kind = payload[start] & 0x1F if h264_types else (payload[start] >> 1) & 0x3F
            if kind != aud_type:
                parts += (START_CODE, view[start:end])
        header = _pes_header(
            STREAM_ID_VIDEO, (pts + TS_SHIFT) & TS_MASK, (dts + TS_SHIFT) & TS_MASK, None
        )
        parts.insert(0, header)
        flags = _AF_PCR | (_AF_RANDOM_ACCESS if frame.keyframe else 0)
        af = bytes((flags,)) + encode_pcr(dts)
        return self._packetize(VIDEO_PID, b"".join(parts), af)

    def _audio(self, frame: Frame, dts: int) -> bytes:
        adts = aac.build_adts_header(self._asc, len(frame.payload))
        ts = (dts + TS_SHIFT) & TS_MASK
        header = _pes_header(STREAM_ID_AUDIO, ts, ts, len(adts) + len(frame.payload))
        af = None
        if self.pcr_pid == AUDIO_PID:
            af = bytes((_AF_PCR | _AF_RANDOM_ACCESS,)) + encode_pcr(dts)
        return self._packetize(AUDIO_PID, b"".join((header, adts, frame.payload)), af)

    def _packetize(self, pid: int, pes: bytes, af: bytes | None) -> bytes:
        """Cut one PES into packets: a built first packet, sliced middles, a stuffed tail."""
        cc = self._cc[pid]
        size = len(pes)
        first = PAYLOAD_SIZE - (1 + len(af) if af is not None else 0)
        if size <= first:
            self._cc[pid] = (cc + 1) & 15
            return _packet(pid, True, cc, af, pes)
        view = memoryview(pes)
        parts: list[_Buffer] = [_packet(pid, True, cc, af, view[:first])]
        full_end = first + (size - first) // PAYLOAD_SIZE * PAYLOAD_SIZE
        headers = self._plain[pid]
        for pos in range(first, full_end, PAYLOAD_SIZE):
            cc = (cc + 1) & 15
            parts += (headers[cc], view[pos : pos + PAYLOAD_SIZE])
        if full_end < size:
            cc = (cc + 1) & 15
            parts.append(_packet(pid, False, cc, None, view[full_end:]))
        self._cc[pid] = (cc + 1) & 15
        return b"".join(parts)
