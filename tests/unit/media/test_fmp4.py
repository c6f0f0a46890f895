"""fMP4 writer: box layout, sample tables, and FFmpeg reading back what we wrote."""

from __future__ import annotations

import struct

import pytest

from server.media import fmp4
from server.media.frame import Codec, CodecConfig, Frame, TrackKind

from .avsource import Media, decode_all, has_encoder, iter_boxes, media

VIDEO = TrackKind.VIDEO
AUDIO = TrackKind.AUDIO


def children(data: bytes, start: int, end: int) -> dict[bytes, list[tuple[int, int]]]:
    found: dict[bytes, list[tuple[int, int]]] = {}
    for kind, body, box_end in iter_boxes(data, start, end):
        found.setdefault(kind, []).append((body, box_end))
    return found


def path(data: bytes, *kinds: bytes, start: int = 0, end: int | None = None) -> tuple[int, int]:
    """(payload start, end) of the first box along ``kinds`` (container boxes only)."""
    end = len(data) if end is None else end
    for kind in kinds:
        start, end = children(data, start, end)[kind][0]
    return start, end


def parse_trun(data: bytes, start: int) -> tuple[int, list[tuple[int, ...]]]:
    """(data_offset, per-sample field tuples) of a trun box payload at ``start``."""
    flags = int.from_bytes(data[start + 1 : start + 4], "big")
    count, offset = struct.unpack_from(">Ii", data, start + 4)
    fields = sum(1 for bit in (0x100, 0x200, 0x400, 0x800) if flags & bit)
    fmt = ">" + ("IIIi"[:fields] if fields == 4 else "I" * fields)
    step = 4 * fields
    samples = [struct.unpack_from(fmt, data, start + 12 + i * step) for i in range(count)]
    return offset, samples


def package(m: Media, per_gop: bool = True) -> bytes:
    """init + one fragment per GOP (exact video durations from the next keyframe)."""
    muxer = fmp4.Fmp4Muxer(m.configs)
    offset = -min(f.dts for f in m.frames)
    out = [muxer.init_segment()]
    pending: dict[TrackKind, list[Frame]] = {VIDEO: [], AUDIO: []}
    for frame in m.frames:
        if per_gop and frame.track is VIDEO and frame.keyframe and pending[VIDEO]:
            out.append(muxer.fragment(pending, end_dts={VIDEO: frame.dts}, offset=offset))
            pending = {VIDEO: [], AUDIO: []}
        pending[frame.track].append(frame)
    out.append(muxer.fragment(pending, offset=offset))
    return b"".join(out)


def test_init_segment_layout() -> None:
    m = media(seconds=1)
    data = fmp4.Fmp4Muxer(m.configs).init_segment()
    top = [kind for kind, _, _ in iter_boxes(data)]
    assert top == [b"ftyp", b"moov"]
    moov = children(data, *path(data, b"moov"))
    assert len(moov[b"trak"]) == 2 and b"mvhd" in moov and b"mvex" in moov
    mvex = children(data, *moov[b"mvex"][0])
    assert len(mvex[b"trex"]) == 2
    stsd_start, _ = path(data, b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd")
    entry = data[stsd_start + 12 : stsd_start + 16]
    assert entry == b"avc1"
    assert m.video is not None and m.video.extradata in data  # avcC record verbatim
    assert m.audio is not None and m.audio.extradata in data  # inside esds
    mdhd = [data[s + 12 : s + 16] for s, _ in _all(data, b"mdhd")]
    assert [int.from_bytes(x, "big") for x in mdhd] == [90000, 48000]


def _all(data: bytes, kind: bytes, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Every ``kind`` box anywhere below (searching known containers)."""
    containers = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"moof", b"traf"}
    found = []
    for k, body, box_end in iter_boxes(data, start, len(data) if end is None else end):
        if k == kind:
            found.append((body, box_end))
        if k in containers:
            found += _all(data, kind, body, box_end)
    return found


def test_fragment_sample_table_and_offsets() -> None:
    config = media(seconds=1).video
    assert config is not None
    muxer = fmp4.Fmp4Muxer([config])
    frames = [
        Frame(VIDEO, Codec.H264, 0, 6000, True, b"\x00\x00\x00\x01\x65"),
        Frame(VIDEO, Codec.H264, 3000, 12000, False, b"\x00\x00\x00\x02\x41\x00"),
        Frame(VIDEO, Codec.H264, 6000, 3000, False, b"\x00\x00\x00\x01\x01"),
    ]
    data = muxer.fragment({VIDEO: frames}, end_dts={VIDEO: 9100}, offset=100)
    assert [k for k, _, _ in iter_boxes(data)] == [b"moof", b"mdat"]
    (tfdt, _), (trun, _) = _all(data, b"tfdt")[0], _all(data, b"trun")[0]
    assert data[tfdt] == 1 and struct.unpack_from(">Q", data, tfdt + 4)[0] == 100
    offset, samples = parse_trun(data, trun)
    assert samples == [
        (3000, 5, 0x02000000, 6000),
        (3000, 6, 0x01010000, 9000),
        (3100, 5, 0x01010000, -3000),  # last: up to end_dts; negative offset (v1, signed)
    ]
    mdat = data.index(b"mdat") - 4
    assert offset == mdat + 8  # data offset relative to the moof start (default-base-is-moof)
    assert data[offset:] == b"".join(f.payload for f in frames)
    assert muxer.sequence == 1


def test_audio_uses_sample_rate_timescale_and_running_duration() -> None:
    m = media(video=None, seconds=1)
    muxer = fmp4.Fmp4Muxer(m.configs)
    frames = m.track(AUDIO)[:5]
    data = muxer.fragment({AUDIO: frames}, offset=-frames[0].dts)
    _, samples = parse_trun(data, _all(data, b"trun")[0][0])
    assert [s[0] for s in samples] == [1024] * 5  # 1920 ticks at 90 kHz = 1024 at 48 kHz
    assert [s[1] for s in samples] == [len(f.payload) for f in frames]
    assert muxer.fragment({}) == b""


def test_unsupported_codec_is_refused() -> None:
    vp9 = CodecConfig(TrackKind.VIDEO, Codec.VP9, b"\x01\x00\x00\x00", width=64, height=64)
    with pytest.raises(ValueError, match="vp9"):
        fmp4.Fmp4Muxer([vp9])
    assert Codec.OPUS not in fmp4.SUPPORTED_CODECS  # files (recordings) only, not HLS
    assert Codec.OPUS in fmp4.FILE_CODECS
    with pytest.raises(ValueError):
        fmp4.Fmp4Muxer([])


@pytest.mark.parametrize("per_gop", [True, False])
def test_h264_aac_read_back_by_ffmpeg(per_gop: bool) -> None:
    m = media()
    result = decode_all(package(m, per_gop))
    assert result["errors"] == []
    assert result["video"]["codec"] == "h264"
    assert (result["video"]["width"], result["video"]["height"]) == (320, 180)
    assert result["audio"]["sample_rate"] == 48000
    assert result["decoded"]["video"] == len(m.track(VIDEO))
    assert result["decoded"]["audio"] == len(m.track(AUDIO))
    for kind in ("video", "audio"):
        pts = result["pts"][kind]
        assert pts == sorted(pts) and len(set(pts)) == len(pts)


@pytest.mark.skipif(not has_encoder("libx265"), reason="libx265 not in this FFmpeg build")
def test_hevc_read_back_by_ffmpeg() -> None:
    m = media(video="libx265", audio=False, seconds=2)
    data = package(m)
    stsd_start, _ = path(data, b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd")
    assert data[stsd_start + 12 : stsd_start + 16] == b"hvc1"
    result = decode_all(data)
    assert result["errors"] == []
    assert result["video"]["codec"] == "hevc"
    assert result["decoded"]["video"] == len(m.track(VIDEO))


def test_descriptor_length_uses_continuation_bytes() -> None:
    long_body = bytes(200)
    encoded = fmp4._descriptor(0x05, long_body)
    assert encoded[:3] == bytes((0x05, 0x81, 0x48)) and encoded[3:] == long_body
