"""MPEG-TS demuxer: transport packets -> PES -> ``Frame`` + ``CodecConfig`` (SRT ingest).

Built to be fed whatever arrives from the network: it re-synchronises on the sync byte,
drops duplicate packets, drops a PES that lost packets (continuity counter gap) or does
not parse, bounds every buffer, and counts each of those in ``stats``. The only
exception it raises is ``MediaFormatError``, and only when the input is not MPEG-TS at
all (no sync for ``max_garbage`` bytes) -- a lossy stream degrades, it never crashes.

Codec configuration comes from the stream itself: H.264/H.265 parameter sets found in
band become the CodecConfig (and are removed from the frames, as are access unit
delimiters), AAC configuration comes from the ADTS headers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import aac, h264, h265
from .errors import MediaFormatError
from .frame import TIMEBASE, Codec, CodecConfig, Frame, TrackKind
from .mpegts_psi import (
    PACKET_SIZE,
    PAT_PID,
    STREAM_TYPE_AAC_ADTS,
    STREAM_TYPE_H264,
    STREAM_TYPE_H265,
    SYNC_BYTE,
    TS_MASK,
    decode_timestamp,
    parse_pat,
    parse_pmt,
)
from .nal import annexb_nal_spans, nals_to_length_prefixed

TsItem = CodecConfig | Frame

_VIDEO_TYPES = {STREAM_TYPE_H264: Codec.H264, STREAM_TYPE_H265: Codec.H265}
_HALF_RANGE = 1 << 32


@dataclass(slots=True)
class DemuxStats:
    """What the demuxer had to skip or repair (for logs and metrics)."""

    packets: int = 0
    resyncs: int = 0
    skipped_bytes: int = 0
    cc_errors: int = 0
    dropped_pes: int = 0
    bad_tables: int = 0
    frames: int = 0


@dataclass(slots=True)
class _Elementary:
    """Reassembly state of one elementary stream PID."""

    track: TrackKind
    codec: str
    cc: int = -1
    parts: list[memoryview] = field(default_factory=list)
    size: int = 0
    expected: int = 0  # whole PES size when PES_packet_length is set, else 0
    broken: bool = False
    config: CodecConfig | None = None
    record: tuple[bytes, ...] = ()  # the parameter sets / ASC the config was built from
    adts: tuple[int, int, int] = (0, 0, 0)  # AAC object type, rate, channels of the ASC


@dataclass(frozen=True, slots=True)
class _Pes:
    pts: int
    dts: int
    payload: bytes


def _parse_pes(data: bytes) -> _Pes:
    """PTS/DTS and payload of a complete PES (MediaFormatError when malformed)."""
    if len(data) < 9 or data[:3] != b"\x00\x00\x01":
        raise MediaFormatError("missing PES start code")
    length = (data[4] << 8) | data[5]
    end = 6 + length if length else len(data)
    if end > len(data):
        raise MediaFormatError("truncated PES")
    start = 9 + data[8]
    flags = data[7] >> 6
    if start > end or flags not in (2, 3):
        raise MediaFormatError("PES without a usable header or PTS")
    pts = decode_timestamp(data, 9)
    dts = decode_timestamp(data, 14) if flags == 3 else pts
    if start < (19 if flags == 3 else 14):
        raise MediaFormatError("PES header shorter than its timestamps")
    return _Pes(pts, dts, data[start:end])


class TsDemuxer:
    """Feed transport stream bytes in any chunking; get configs and frames in order."""

    __slots__ = (
        "_announced",
        "_elementary",
        "_garbage",
        "_max_garbage",
        "_max_pes",
        "_pmt_pid",
        "_ref",
        "_rest",
        "_tables",
        "stats",
    )

    def __init__(self, *, max_pes_bytes: int = 8 << 20, max_garbage: int = 64 << 10) -> None:
        self._max_pes = max_pes_bytes
        self._max_garbage = max_garbage
        self._rest = b""
        self._garbage = 0
        self._pmt_pid: int | None = None
        self._elementary: dict[int, _Elementary] = {}
        self._announced: frozenset[TrackKind] = frozenset()
        self._ref: int | None = None
        self._tables: dict[int, bytes] = {}
        self.stats = DemuxStats()

    # ------------------------------------------------------------------ packets

    def feed(self, data: bytes | bytearray | memoryview) -> list[TsItem]:
        """Consume ``data``; return the configs and frames it completed, in order.

        Input that is all aligned packets (what an encoder sends) takes ``_aligned``;
        anything else ``_scan``, which re-synchronises.
        """
        buf = self._rest + bytes(data) if self._rest else bytes(data)
        count = len(buf) // PACKET_SIZE
        if count and buf[0 : count * PACKET_SIZE : PACKET_SIZE].count(SYNC_BYTE) == count:
            self._garbage = 0
            self._rest = buf[count * PACKET_SIZE :]
            self.stats.packets += count
            return self._aligned(buf, count)
        return self._scan(buf)

    def _scan(self, buf: bytes) -> list[TsItem]:
        """Packet by packet, re-synchronising on garbage (also the benchmark's
        reference: it was the only path before ``_aligned``). The common packet -- the
        next in-sequence piece of a PES, payload only -- is appended right here as a
        memoryview slice; everything else takes ``_packet``."""
        out: list[TsItem] = []
        view = memoryview(buf)
        pos, size, count, resynced = 0, len(buf), 0, False
        elementary, max_pes = self._elementary, self._max_pes
        while size - pos >= PACKET_SIZE:
            end = pos + PACKET_SIZE
            if buf[pos] != SYNC_BYTE or (size - end >= PACKET_SIZE and buf[end] != SYNC_BYTE):
                pos = self._resync(buf, pos + 1)
                resynced = True
                continue
            if resynced:  # garbage is only counted since the last good packet
                self._garbage, resynced = 0, False
            b1, b3 = buf[pos + 1], buf[pos + 3]
            es = elementary.get(((b1 & 0x1F) << 8) | buf[pos + 2])
            if (
                es is not None
                and b3 & 0x30 == 0x10  # payload only
                and not b1 & 0xC0  # no error flag, no unit start
                and es.parts
                and b3 & 0x0F == (es.cc + 1) & 0x0F
                and es.size < max_pes
            ):
                es.cc = b3 & 0x0F
                es.parts.append(view[pos + 4 : end])
                es.size += PACKET_SIZE - 4
                if es.expected and es.size >= es.expected:
                    self._finish(es, out)
            else:
                self._packet(view[pos:end], out)
                elementary = self._elementary  # a PMT may have replaced the map
            count += 1
            pos = end
        self.stats.packets += count
        self._rest = buf[pos:]
        return out

    def _aligned(self, buf: bytes, count: int) -> list[TsItem]:
        """``count`` packets that all start with the sync byte.

        The header bytes 1-3 of every packet are gathered with three strided slices;
        a run of packets continuing the same PES (same PID byte pair, payload only,
        continuity counter counting up) is then measured with C-level calls
        (:func:`_continuation_run`) and taken in one step, so the Python work is per
        run -- a video frame is mostly one run -- rather than per packet.
        """
        out: list[TsItem] = []
        view = memoryview(buf)
        h1, h2, h3 = buf[1::PACKET_SIZE], buf[2::PACKET_SIZE], buf[3::PACKET_SIZE]
        elementary, max_pes = self._elementary, self._max_pes
        i = 0
        while i < count:
            b1, b3 = h1[i], h3[i]
            es = elementary.get(((b1 & 0x1F) << 8) | h2[i])
            if (
                es is None
                # not payload only, or scrambling bits set: _continuation_run compares
                # whole header bytes and would measure a run of 0 (no progress)
                or b3 & 0xF0 != 0x10
                or b1 & 0xC0  # error flag or unit start
                or not es.parts
                or b3 & 0x0F != (es.cc + 1) & 0x0F
                or es.size >= max_pes
            ):
                pos = i * PACKET_SIZE
                self._packet(view[pos : pos + PACKET_SIZE], out)
                elementary = self._elementary  # a PMT may have replaced the map
                i += 1
                continue
            run = _continuation_run(h1, h2, h3, i, min(count - i, _MAX_RUN))
            room = max_pes - es.size
            if es.expected:
                room = min(room, es.expected - es.size)
            run = min(run, -(-room // _PAYLOAD))
            start = i * PACKET_SIZE
            es.parts += map(view[start : start + run * PACKET_SIZE].__getitem__, _PAYLOADS[:run])
            es.size += run * _PAYLOAD
            es.cc = h3[i + run - 1] & 0x0F
            if es.expected and es.size >= es.expected:
                self._finish(es, out)
            i += run
        return out

    def _resync(self, buf: bytes, pos: int) -> int:
        """Index of the next plausible packet start (two sync bytes 188 apart)."""
        self.stats.resyncs += 1
        start = pos
        while True:
            pos = buf.find(b"\x47", pos)
            if pos < 0:
                pos = len(buf)
                break
            if pos + PACKET_SIZE >= len(buf) or buf[pos + PACKET_SIZE] == SYNC_BYTE:
                break
            pos += 1
        self.stats.skipped_bytes += pos - start + 1
        self._garbage += pos - start + 1
        if self._garbage > self._max_garbage:
            raise MediaFormatError(f"no MPEG-TS sync in {self._garbage} bytes")
        return pos

    def _packet(self, pkt: memoryview, out: list[TsItem]) -> None:
        b1, b2, b3 = pkt[1], pkt[2], pkt[3]
        if b1 & 0x80:  # transport_error_indicator: the link layer says it is damaged
            return
        pid = ((b1 & 0x1F) << 8) | b2
        control = (b3 >> 4) & 0x03
        start = 4
        if control & 0x02:
            start = 5 + pkt[4]
        if not control & 0x01 or start >= PACKET_SIZE:
            return
        payload = pkt[start:]
        unit_start = bool(b1 & 0x40)
        es = self._elementary.get(pid)
        if es is not None:
            self._es_packet(es, b3 & 0x0F, unit_start, payload, out)
        elif unit_start and (pid == PAT_PID or pid == self._pmt_pid):
            self._table(pid, payload)

    # ------------------------------------------------------------------ tables

    def _table(self, pid: int, payload: memoryview) -> None:
        """Parse a PAT/PMT, skipping the CRC work when it repeats the last one verbatim."""
        raw = bytes(payload)
        if self._tables.get(pid) == raw:
            return
        self._tables[pid] = raw
        try:
            if pid == PAT_PID:
                programs = parse_pat(payload)
                if programs:
                    self._pmt_pid = programs[min(programs)]
            else:
                self._program(parse_pmt(payload).streams)
        except MediaFormatError:
            self.stats.bad_tables += 1

    def _program(self, streams: tuple[tuple[int, int], ...]) -> None:
        """Adopt the PMT's first video and first audio stream we can carry."""
        wanted: dict[int, tuple[TrackKind, str]] = {}
        for stream_type, pid in streams:
            if stream_type in _VIDEO_TYPES:
                kind = (TrackKind.VIDEO, _VIDEO_TYPES[stream_type])
            elif stream_type == STREAM_TYPE_AAC_ADTS:
                kind = (TrackKind.AUDIO, Codec.AAC)
            else:
                continue
            if all(track is not kind[0] for track, _ in wanted.values()):
                wanted[pid] = kind
        current = self._elementary
        self._elementary = {
            pid: current[pid]
            if pid in current and (current[pid].track, current[pid].codec) == kind
            else _Elementary(*kind)
            for pid, kind in wanted.items()
        }
        self._announced = frozenset(track for track, _ in wanted.values())

    @property
    def tracks(self) -> frozenset[TrackKind]:
        """The tracks the PMT announced that we carry (empty before a PMT): their
        configurations come with their first frames, and audio often lags video."""
        return self._announced

    # ------------------------------------------------------------------ PES

    def _es_packet(
        self, es: _Elementary, cc: int, unit_start: bool, payload: memoryview, out: list[TsItem]
    ) -> None:
        if es.cc >= 0:
            if cc == es.cc:  # a duplicate packet (allowed once by the spec): skip it
                return
            if cc != (es.cc + 1) & 0x0F:
                self.stats.cc_errors += 1
                es.broken = True
        es.cc = cc
        if unit_start:
            if es.parts:
                self._finish(es, out)
            es.parts, es.size, es.broken = [payload], len(payload), False
            length = (payload[4] << 8) | payload[5] if len(payload) >= 6 else 0
            es.expected = 6 + length if length else 0
        elif es.parts:
            es.parts.append(payload)
            es.size += len(payload)
            if es.size > self._max_pes:
                self.stats.dropped_pes += 1
                es.parts, es.size = [], 0
                return
        else:
            return
        if es.expected and es.size >= es.expected:
            self._finish(es, out)

    def _finish(self, es: _Elementary, out: list[TsItem]) -> None:
        data = b"".join(es.parts)
        broken = es.broken
        es.parts, es.size, es.expected, es.broken = [], 0, 0, False
        if broken:
            self.stats.dropped_pes += 1
            return
        try:
            pes = _parse_pes(data)
            handler = self._audio if es.track is TrackKind.AUDIO else self._video
            items = handler(es, pes)
        except MediaFormatError:
            self.stats.dropped_pes += 1
            return
        self.stats.frames += sum(1 for i in items if isinstance(i, Frame))
        out += items

    def _unwrap(self, ts: int) -> int:
        """Map a 33-bit timestamp onto a continuous timeline near the previous one."""
        if self._ref is None:
            self._ref = ts
            return ts
        delta = (ts - self._ref) & TS_MASK
        if delta >= _HALF_RANGE:
            delta -= 1 << 33
        self._ref += delta
        return self._ref

    def _times(self, pes: _Pes) -> tuple[int, int]:
        dts = self._unwrap(pes.dts)
        offset = (pes.pts - pes.dts) & TS_MASK
        return dts, dts + (offset - (1 << 33) if offset >= _HALF_RANGE else offset)

    # ------------------------------------------------------------------ codecs

    def _video(self, es: _Elementary, pes: _Pes) -> list[TsItem]:
        payload = pes.payload
        h264_rules = es.codec == Codec.H264
        skip, keys = (_H264_SKIP, _H264_KEY) if h264_rules else (_H265_SKIP, _H265_KEY)
        view = memoryview(payload)
        sets: list[bytes] = []
        body: list[memoryview] = []
        keyframe = False
        for start, end in annexb_nal_spans(payload):
            head = payload[start]
            kind = head & 0x1F if h264_rules else (head >> 1) & 0x3F
            if kind in skip:
                if kind != skip[-1]:  # parameter sets, not the delimiter
                    sets.append(payload[start:end])
                continue
            keyframe = keyframe or kind in keys
            body.append(view[start:end])
        items: list[TsItem] = []
        if sets and tuple(sets) != es.record:
            config = _video_config(es.codec, sets)
            es.record = tuple(sets)
            if config is not None and config != es.config:
                es.config = config
                items.append(config)
        if es.config is None or not body:
            return items
        dts, pts = self._times(pes)
        items.append(
            Frame(TrackKind.VIDEO, es.codec, dts, pts, keyframe, nals_to_length_prefixed(body))
        )
        return items

    def _audio(self, es: _Elementary, pes: _Pes) -> list[TsItem]:
        items: list[TsItem] = []
        dts, _ = self._times(pes)
        for header, raw in aac.iter_adts(pes.payload):
            key = (header.object_type, header.sample_rate, header.channel_config)
            if key != es.adts:  # the ASC is rebuilt only when the header says otherwise
                es.adts = key
                asc = aac.asc_from_adts(header)
                if (asc,) != es.record:
                    es.record = (asc,)
                    es.config = aac.config_from_asc(asc)
                    items.append(es.config)
            items.append(Frame(TrackKind.AUDIO, Codec.AAC, dts, dts, True, raw))
            dts += 1024 * header.raw_blocks * TIMEBASE // header.sample_rate
        return items

    def discontinuity(self) -> None:
        """Data was lost upstream (an SRT receiver gave up on packets): forget the
        partial transport packet and drop every PES in progress. Which PIDs lost
        packets is unknown, and continuity counters can line up again by chance."""
        self._rest = b""
        for es in self._elementary.values():
            if es.parts:
                es.broken = True

    def flush(self) -> list[TsItem]:
        """End of input: complete the PES still open on every PID (video has no length)."""
        out: list[TsItem] = []
        for es in self._elementary.values():
            if es.parts:
                self._finish(es, out)
        return out


_PAYLOAD = PACKET_SIZE - 4  # payload of a packet without adaptation field
_MAX_RUN = 128  # packets measured at once (bounds the slices _continuation_run makes)
_ONE_BYTE = [bytes((value,)) for value in range(256)]
# Header byte 3 of payload-only packets with continuity counters 0, 1, ... 15, 0, ...
_CC_SEQUENCE = bytes(0x10 | (n & 0x0F) for n in range(16 + _MAX_RUN))
# The payload slices of a run of packets (no Python loop per packet to cut them).
_PAYLOADS = [slice(n * PACKET_SIZE + 4, (n + 1) * PACKET_SIZE) for n in range(_MAX_RUN)]


def _continuation_run(h1: bytes, h2: bytes, h3: bytes, i: int, limit: int) -> int:
    """How many packets from index ``i`` (at most ``limit``, at least 1) carry the same
    header bytes 1-2 as packet ``i`` and payload-only byte 3 whose continuity counter
    counts up by one: two ``lstrip`` and one integer XOR, no loop over packets."""
    run = limit - len(h1[i : i + limit].lstrip(_ONE_BYTE[h1[i]]))
    if run > 1:
        run -= len(h2[i : i + run].lstrip(_ONE_BYTE[h2[i]]))
    if run > 1:
        cc = h3[i] & 0x0F
        got = int.from_bytes(h3[i : i + run], "big")
        diff = got ^ int.from_bytes(_CC_SEQUENCE[cc : cc + run], "big")
        if diff:  # the first differing byte is the most significant one set
            run -= 1 + (diff.bit_length() - 1) // 8
    return run


# NAL types removed from frames (parameter sets..., delimiter last) and keyframe types.
_H264_SKIP: tuple[int, ...] = (h264.NAL_SPS, h264.NAL_PPS, h264.NAL_AUD)
_H264_KEY = frozenset({h264.NAL_IDR})
_H265_SKIP = (h265.NAL_VPS, h265.NAL_SPS, h265.NAL_PPS, h265.NAL_AUD)
_H265_KEY = frozenset(range(h265.NAL_IRAP_FIRST, h265.NAL_IRAP_LAST + 1))


def _video_config(codec: str, sets: list[bytes]) -> CodecConfig | None:
    """Config from in-band parameter sets; None when this access unit has no SPS/PPS pair
    (a PPS-only update keeps the current config)."""
    if codec == Codec.H264:
        sps, pps = h264.parameter_sets(sets)
        return h264.config_from_parameter_sets(sps, pps) if sps and pps else None
    vps, sps, pps = h265.parameter_sets(sets)
    return h265.config_from_parameter_sets(vps, sps, pps) if sps and pps else None
