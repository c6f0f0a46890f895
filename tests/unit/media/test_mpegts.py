"""MPEG-TS muxer and demuxer: packet rules, FFmpeg reading our TS, us reading FFmpeg's,
round trips in arbitrary chunkings, and garbage that must only ever raise MediaFormatError."""

from __future__ import annotations

import io
import random
from fractions import Fraction

import av
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.media import aac, fmp4, mpegts_psi
from server.media.errors import MediaFormatError
from server.media.frame import Codec, CodecConfig, Frame, TrackKind
from server.media.mpegts import TS_SHIFT, TsDemuxer, TsItem, TsMuxer

from .avsource import Media, decode_all, has_encoder, media

# Against the compiled modules and their pure-Python twins (tests/accel_twins.py).
pytestmark = pytest.mark.usefixtures("implementation")

VIDEO = TrackKind.VIDEO
AUDIO = TrackKind.AUDIO


def mux(m: Media) -> bytes:
    muxer = TsMuxer(m.configs)
    offset = -min(f.dts for f in m.frames)
    return b"".join(muxer.mux(f, offset) for f in m.frames)


def demux(data: bytes, chunk_sizes: list[int] | None = None) -> tuple[list[TsItem], TsDemuxer]:
    demuxer = TsDemuxer()
    items: list[TsItem] = []
    pos, sizes = 0, iter(chunk_sizes or [])
    while pos < len(data):
        size = next(sizes, 1316)
        items += demuxer.feed(data[pos : pos + size])
        pos += size
    return items + demuxer.flush(), demuxer


def frames_of(items: list[TsItem], kind: TrackKind) -> list[Frame]:
    return [i for i in items if isinstance(i, Frame) and i.track is kind]


def packets(data: bytes) -> list[dict[str, int]]:
    assert len(data) % 188 == 0
    out = []
    for pos in range(0, len(data), 188):
        p = data[pos : pos + 188]
        assert p[0] == 0x47
        control = (p[3] >> 4) & 3
        pcr = None
        if control & 2 and p[4] >= 7 and p[5] & 0x10:
            pcr = mpegts_psi.decode_pcr(p, 6)
        out.append(
            {
                "pid": ((p[1] & 0x1F) << 8) | p[2],
                "start": p[1] & 0x40,
                "cc": p[3] & 0x0F,
                "payload": control & 1,
                "pcr": pcr,
                "offset": 4 + (1 + p[4] if control & 2 else 0),
                "pos": pos,
            }
        )
    return out


def test_crc32_mpeg_check_value() -> None:
    assert mpegts_psi.crc32_mpeg(b"123456789") == 0x0376E6E7


def test_mux_packet_rules() -> None:
    m = media(seconds=2)
    data = mux(m)
    table = packets(data)
    last_cc: dict[int, int] = {}
    for p in table:
        if p["payload"]:
            if p["pid"] in last_cc:
                assert p["cc"] == (last_cc[p["pid"]] + 1) & 15, p
            last_cc[p["pid"]] = p["cc"]
    assert table[0]["pid"] == 0 and table[1]["pid"] == mpegts_psi.PMT_PID
    video_starts = [p for p in table if p["pid"] == mpegts_psi.VIDEO_PID and p["start"]]
    assert len(video_starts) == len(m.track(VIDEO))
    assert all(p["pcr"] is not None for p in video_starts)
    first = video_starts[0]
    pes = data[first["pos"] + first["offset"] : first["pos"] + 188]
    body = pes[9 + pes[8] :]
    assert body.startswith(b"\x00\x00\x00\x01\x09\xf0\x00\x00\x00\x01\x67")  # AUD, then SPS
    pcrs = [p["pcr"] for p in video_starts]
    assert pcrs == sorted(pcrs)
    assert mpegts_psi.parse_pat(data[4:188]) == {1: mpegts_psi.PMT_PID}


def test_ffmpeg_decodes_our_ts() -> None:
    m = media()
    result = decode_all(mux(m), "mpegts")
    assert result["errors"] == []
    assert (result["video"]["width"], result["video"]["height"]) == (320, 180)
    assert result["decoded"]["video"] == len(m.track(VIDEO))
    assert result["decoded"]["audio"] == len(m.track(AUDIO))


@pytest.mark.skipif(not has_encoder("libx265"), reason="libx265 not in this FFmpeg build")
def test_ffmpeg_decodes_our_hevc_ts() -> None:
    m = media(video="libx265", audio=True, seconds=2)
    result = decode_all(mux(m), "mpegts")
    assert result["errors"] == []
    assert result["video"]["codec"] == "hevc"
    assert result["decoded"]["video"] == len(m.track(VIDEO))
    items, _ = demux(mux(m))
    assert [f.payload for f in frames_of(items, VIDEO)] == [f.payload for f in m.track(VIDEO)]


def _same_audio_config(a: CodecConfig, b: CodecConfig) -> bool:
    return (a.sample_rate, a.channels, a.profile) == (b.sample_rate, b.channels, b.profile)


def test_round_trip_in_random_chunks() -> None:
    m = media()
    data = mux(m)
    rnd = random.Random(7)
    items, demuxer = demux(data, [rnd.choice((1, 7, 188, 189, 1316, 5000)) for _ in range(5000)])
    configs = [i for i in items if isinstance(i, CodecConfig)]
    assert m.video is not None and m.audio is not None
    assert configs[0] == m.video and _same_audio_config(configs[1], m.audio)
    assert demuxer.stats.cc_errors == demuxer.stats.dropped_pes == 0
    shifts = set()
    for kind in (VIDEO, AUDIO):
        ours, theirs = frames_of(items, kind), m.track(kind)
        assert [f.payload for f in ours] == [f.payload for f in theirs]
        assert [f.keyframe for f in ours] == [f.keyframe for f in theirs]
        deltas = {(a.dts - b.dts, a.pts - b.pts) for a, b in zip(ours, theirs, strict=True)}
        assert len(deltas) == 1  # one constant shift for both timestamps
        shifts |= deltas
    assert len(shifts) == 1 and len(set(shifts.pop())) == 1  # same shift on both tracks


def _ffmpeg_ts(seconds: int = 2) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mpegts") as out:
        assert isinstance(out, av.container.OutputContainer)
        video = out.add_stream("libx264", rate=30)
        audio = out.add_stream("aac", rate=48000)
        assert isinstance(video, av.VideoStream) and isinstance(audio, av.AudioStream)
        video.width, video.height, video.pix_fmt = 320, 180, "yuv420p"
        video.options = {"preset": "ultrafast", "g": "30"}
        audio.layout = "stereo"
        for i in range(seconds * 30):
            frame = av.VideoFrame(320, 180, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([(i * 7) & 0xFF]) * plane.buffer_size)
            frame.pts, frame.time_base = i, Fraction(1, 30)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        for i in range(seconds * 47):
            samples = av.AudioFrame(format="fltp", layout="stereo", samples=1024)
            for plane in samples.planes:
                plane.update(bytes(plane.buffer_size))
            samples.pts, samples.sample_rate = i * 1024, 48000
            out.mux(audio.encode(samples))
        out.mux(audio.encode(None))
    return buf.getvalue()


def test_demux_ffmpeg_ts_and_repackage_as_fmp4() -> None:
    items, demuxer = demux(_ffmpeg_ts())
    configs = {i.track: i for i in items if isinstance(i, CodecConfig)}
    assert (configs[VIDEO].width, configs[VIDEO].height) == (320, 180)
    assert configs[AUDIO].sample_rate == 48000 and configs[AUDIO].channels == 2
    video, audio = frames_of(items, VIDEO), frames_of(items, AUDIO)
    assert len(video) == 60 and video[0].keyframe and sum(f.keyframe for f in video) == 2
    assert len(audio) >= 94 and demuxer.stats.dropped_pes == 0
    muxer = fmp4.Fmp4Muxer(list(configs.values()))
    offset = -min(f.dts for f in video + audio)
    data = muxer.init_segment() + muxer.fragment({VIDEO: video, AUDIO: audio}, offset=offset)
    result = decode_all(data)
    assert result["errors"] == []
    assert result["decoded"]["video"] == 60


def _drop_packet(data: bytes, pid: int, nth: int) -> bytes:
    hits = [p["pos"] for p in packets(data) if p["pid"] == pid and not p["start"]]
    pos = hits[nth]
    return data[:pos] + data[pos + 188 :]


def test_lost_packet_drops_one_pes_and_counts_it() -> None:
    m = media(seconds=2)
    data = _drop_packet(mux(m), mpegts_psi.VIDEO_PID, 10)
    items, demuxer = demux(data)
    assert demuxer.stats.cc_errors == 1 and demuxer.stats.dropped_pes == 1
    assert len(frames_of(items, VIDEO)) == len(m.track(VIDEO)) - 1
    assert len(frames_of(items, AUDIO)) == len(m.track(AUDIO))


def test_duplicate_packet_is_ignored() -> None:
    m = media(seconds=1)
    data = mux(m)
    pos = next(
        p["pos"] for p in packets(data) if p["pid"] == mpegts_psi.VIDEO_PID and not p["start"]
    )
    items, demuxer = demux(data[: pos + 188] + data[pos:])
    assert demuxer.stats.cc_errors == 0
    assert [f.payload for f in frames_of(items, VIDEO)] == [f.payload for f in m.track(VIDEO)]


def _one_call(data: bytes, prefix: bytes = b"") -> tuple[list[TsItem], TsDemuxer]:
    demuxer = TsDemuxer()
    items = demuxer.feed(prefix + data)
    return items + demuxer.flush(), demuxer


def _tamper(data: bytes) -> bytes:
    """A lost video packet, a duplicated one and a transport-error packet."""
    data = _drop_packet(data, mpegts_psi.VIDEO_PID, 10)
    table = packets(data)
    dup = next(p["pos"] for p in table if p["pid"] == mpegts_psi.VIDEO_PID and not p["start"])
    data = data[: dup + 188] + data[dup:]
    bad = table[60]["pos"]
    return data[: bad + 1] + bytes([data[bad + 1] | 0x80]) + data[bad + 2 :]


@pytest.mark.parametrize("tampered", [False, True])
def test_aligned_fast_path_matches_the_resyncing_loop(tampered: bool) -> None:
    """Aligned input takes the run-based path; one leading garbage byte forces the
    packet-by-packet loop over the same packets: identical output and counters."""
    data = mux(media(seconds=2))
    data = _tamper(data) if tampered else data
    fast, fast_demuxer = _one_call(data)
    slow, slow_demuxer = _one_call(data, prefix=b"\x00")
    assert fast == slow and len(frames_of(fast, VIDEO)) > 0
    assert fast_demuxer.stats.cc_errors == slow_demuxer.stats.cc_errors
    assert fast_demuxer.stats.dropped_pes == slow_demuxer.stats.dropped_pes
    assert slow_demuxer.stats.resyncs == 1 and fast_demuxer.stats.resyncs == 0


def _big_video(count: int = 4, size: int = 20_000) -> bytes:
    """Keyframes of ``size`` bytes: long runs of continuation packets."""
    config = next(c for c in media(seconds=1).configs if c.track is VIDEO)
    body = b"\x65" + b"\x11" * size
    payload = len(body).to_bytes(4, "big") + body
    muxer = TsMuxer([config])
    return b"".join(
        muxer.mux(Frame(VIDEO, Codec.H264, i * 3000, i * 3000, True, payload), with_tables=i == 0)
        for i in range(count)
    )


def test_runs_stop_at_the_pes_size_limit() -> None:
    data = _big_video()
    whole, _ = _one_call(data)
    assert len(frames_of(whole, VIDEO)) == 4
    for prefix in (b"", b"\x00"):  # the run-based path and the packet loop alike
        small = TsDemuxer(max_pes_bytes=10_000)
        items = small.feed(prefix + data) + small.flush()
        assert frames_of(items, VIDEO) == [] and small.stats.dropped_pes == 4


def test_discontinuity_drops_the_pes_in_progress_even_when_counters_line_up() -> None:
    """16 lost packets of one PID leave its continuity counter looking right."""
    data = _big_video()
    hits = [p["pos"] for p in packets(data) if p["pid"] == mpegts_psi.VIDEO_PID and not p["start"]]
    run = hits[20]
    cut = data[:run] + data[run + 188 * 16 :]  # 16 consecutive continuation packets
    blind = TsDemuxer()
    blind_items = blind.feed(cut[:run]) + blind.feed(cut[run:]) + blind.flush()
    assert blind.stats.cc_errors == 0  # the counters cannot tell
    told = TsDemuxer()
    told_items = told.feed(cut[:run])
    told.discontinuity()
    told_items += told.feed(cut[run:]) + told.flush()
    assert len(frames_of(blind_items, VIDEO)) == 4  # one of them silently corrupt
    assert len(frames_of(told_items, VIDEO)) == 3 and told.stats.dropped_pes == 1


def test_resync_after_garbage() -> None:
    m = media(seconds=1)
    data = mux(m)
    cut = 188 * 40
    garbage = bytes(random.Random(1).randrange(256) for _ in range(1000)).replace(b"\x47", b"\x00")
    items, demuxer = demux(data[:cut] + garbage + data[cut + 100 :])
    assert demuxer.stats.resyncs >= 1 and demuxer.stats.skipped_bytes >= 1000
    assert len(frames_of(items, VIDEO)) >= len(m.track(VIDEO)) - 2


def test_not_mpegts_raises_media_format_error() -> None:
    with pytest.raises(MediaFormatError, match="sync"):
        TsDemuxer(max_garbage=10_000).feed(bytes(20_000))


def test_timestamps_unwrap_across_33_bits() -> None:
    m = media(video=None, seconds=1)
    muxer = TsMuxer(m.configs)
    base = (1 << 33) - 45_000 - TS_SHIFT  # PES timestamps wrap 0.5 s in
    data = b"".join(muxer.mux(f, base - m.frames[0].dts) for f in m.frames)
    items, _ = demux(data)
    dts = [f.dts for f in frames_of(items, AUDIO)]
    assert len(dts) == len(m.frames)
    assert dts == sorted(dts) and dts[-1] > 1 << 33  # continued past the wrap, no jump back


def test_pmt_announces_the_tracks_before_their_configs() -> None:
    """The PMT comes first: the tracks are known before any configuration (audio's
    comes with its first ADTS frame), so HLS can wait for them."""
    data = mux(media(seconds=1))
    demuxer = TsDemuxer()
    assert demuxer.tracks == frozenset()
    items = demuxer.feed(data[: 188 * 2])  # PAT + PMT
    assert items == [] and demuxer.tracks == {VIDEO, AUDIO}
    video_only = TsDemuxer()
    video_only.feed(mux(media(audio=False, seconds=1)))
    assert video_only.tracks == {VIDEO}


def test_audio_only_carries_pcr_on_audio() -> None:
    m = media(video=None, seconds=1)
    table = packets(mux(m))
    audio = [p for p in table if p["pid"] == mpegts_psi.AUDIO_PID and p["start"]]
    assert audio and all(p["pcr"] is not None for p in audio)
    assert decode_all(mux(m), "mpegts")["errors"] == []


def test_muxer_refuses_unsupported_tracks() -> None:
    opus = CodecConfig(AUDIO, Codec.OPUS, b"OpusHead", sample_rate=48000)
    with pytest.raises(ValueError):
        TsMuxer([opus])
    audio_only = TsMuxer(
        [CodecConfig(AUDIO, Codec.AAC, aac.build_asc(2, 48000, 2), sample_rate=48000)]
    )
    with pytest.raises(ValueError):
        audio_only.mux(media(seconds=1).track(VIDEO)[0])


# ----------------------------------------------------------------------------- fuzzing


def _feed_all(data: bytes, chunk: int) -> None:
    demuxer = TsDemuxer(max_garbage=4096)
    try:
        for pos in range(0, len(data), chunk):
            demuxer.feed(data[pos : pos + chunk])
        demuxer.flush()
    except MediaFormatError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000), st.integers(1, 400))
def test_fuzz_random_bytes(data: bytes, chunk: int) -> None:
    _feed_all(data, chunk)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, 30_000), st.integers(0, 255)), max_size=40),
    st.integers(0, 30_000),
    st.integers(1, 2000),
)
def test_fuzz_mutated_stream(flips: list[tuple[int, int]], cut: int, chunk: int) -> None:
    data = bytearray(_valid_ts()[: 188 * 160])
    for pos, value in flips:
        data[pos % len(data)] = value
    _feed_all(bytes(data[: len(data) - cut % len(data)]), chunk)


def _valid_ts() -> bytes:
    return mux(media(seconds=1))


def test_scrambling_bits_on_a_continuation_packet_do_not_hang_the_fast_path() -> None:
    """Found by ``python -m bench.fuzz --target ts``: a continuation packet with the
    transport_scrambling_control bits set made the run-based path measure a run of 0
    packets and loop forever on one 1316-byte payload. It is read like the packet loop
    reads it (the bits are not ours to interpret)."""
    data = bytearray(_big_video(count=1, size=2_000))
    video = [p for p in packets(bytes(data)) if p["pid"] == mpegts_psi.VIDEO_PID]
    second = video[1]["pos"]
    data[second + 3] |= 0xC0
    fast, _ = _one_call(bytes(data))
    slow, _ = _one_call(bytes(data), prefix=b"\x00")
    assert fast == slow and len(frames_of(fast, VIDEO)) == 1
