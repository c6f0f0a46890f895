from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.media import flv, h264, nal
from server.media.errors import MediaFormatError
from server.media.flv import EndOfSequence, FlvTagParser, Ignored, build_tag_body
from server.media.frame import Codec, CodecConfig, Frame, TrackKind

from .vectors import QUIET, Options, encode_annexb, encode_flv, has_codec, iter_flv_tags

# Against the compiled modules and their pure-Python twins (tests/accel_twins.py).
pytestmark = pytest.mark.usefixtures("implementation")

X264 = (("preset", "ultrafast"), ("bf", "2"))
FILES = [
    ("libx264", "aac", X264),
    ("libx265", "libopus", (("preset", "ultrafast"), *QUIET.items())),
    ("libsvtav1", None, (("preset", "12"),)),
    ("libvpx-vp9", None, (("deadline", "realtime"), ("cpu-used", "8"))),
]
IDR = nal.nals_to_length_prefixed([b"\x65\x88\x84\x00\x33"])
NON_IDR = nal.nals_to_length_prefixed([b"\x41\x9a\x22"])


def _x264_record() -> bytes:
    au, _ = encode_annexb("libx264", 640, 360, 1, (("preset", "ultrafast"),))[0]
    return h264.build_avcc(*h264.parameter_sets(nal.split_annexb(au)))


def test_captured_avc_headers() -> None:
    parser = FlvTagParser()
    config = parser.video(b"\x17\x00\x00\x00\x00" + _x264_record(), 0)
    assert isinstance(config, CodecConfig)
    assert (config.codec, config.width, config.height) == ("h264", 640, 360)
    frame = parser.video(b"\x17\x01\x00\x00\x00" + IDR, 40)
    assert frame == Frame(TrackKind.VIDEO, "h264", 3600, 3600, True, IDR)
    inter = parser.video(b"\x27\x01\xff\xff\xdf" + NON_IDR, 80)  # cts -33 ms
    assert isinstance(inter, Frame)
    assert (inter.dts, inter.pts, inter.keyframe) == (7200, 7200 - 33 * 90, False)
    assert parser.video(b"\x17\x02\x00\x00\x00", 0) == EndOfSequence(TrackKind.VIDEO, "h264")


@pytest.mark.parametrize(("vcodec", "acodec", "options"), FILES)
def test_ffmpeg_flv_files_parse_and_rebuild_byte_exact(
    vcodec: str, acodec: str | None, options: Options
) -> None:
    if not has_codec(vcodec) or (acodec and not has_codec(acodec)):
        pytest.skip("codec not in this PyAV build")
    data = encode_flv(vcodec, 320, 240, 5, acodec, options)
    parser = FlvTagParser()
    counts = {"config": 0, "frame": 0}
    for kind, ts, body in iter_flv_tags(data):
        if kind not in (8, 9):
            continue
        result = parser.video(body, ts) if kind == 9 else parser.audio(body, ts)
        if isinstance(result, Ignored):
            continue
        if isinstance(result, Frame):
            counts["frame"] += 1
            assert result.dts == ts * 90
            assert flv.tag_timestamp_ms(result) == ts
        elif isinstance(result, CodecConfig):
            counts["config"] += 1
        assert build_tag_body(result) == body
    assert counts["config"] == (2 if acodec else 1)
    assert counts["frame"] >= 5


def test_b_frames_give_pts_after_dts() -> None:
    data = encode_flv("libx264", 320, 240, 6, None, X264)
    frames = [flv.parse_video_tag(b, ts) for t, ts, b in iter_flv_tags(data) if t == 9]
    coded = [f for f in frames if isinstance(f, Frame)]
    assert any(f.pts > f.dts for f in coded)
    assert all(f.pts >= f.dts for f in coded)


def _hevc_frame_body(cts: int = 0) -> bytes:
    return b"hvc1" + cts.to_bytes(3, "big", signed=True) + IDR


def test_modex_timestamp_offset_nano() -> None:
    body = bytes([0x80 | 0x10 | 7, 2]) + (500_000).to_bytes(3, "big") + bytes([0x01])
    frame = flv.parse_video_tag(body + _hevc_frame_body(), 10)
    assert isinstance(frame, Frame)
    assert frame.dts == 900 + 45 and frame.codec == "h265" and frame.keyframe


def test_modex_with_16_bit_size_and_chained_modex() -> None:
    big = bytes([0xFF]) + (299).to_bytes(2, "big") + bytes(300) + bytes([0x17])  # unknown type
    small = bytes([2]) + (1000).to_bytes(3, "big") + bytes([0x01])  # nano, CodedFrames
    body = bytes([0x80 | 0x10 | 7]) + big + small + _hevc_frame_body(5)
    frame = flv.parse_video_tag(body, 0)
    assert isinstance(frame, Frame)
    assert (frame.dts, frame.pts) == (0, 450)


def _track(track_id: int, payload: bytes, fourcc: bytes = b"", sized: bool = True) -> bytes:
    size = len(payload).to_bytes(3, "big") if sized else b""
    return fourcc + bytes([track_id]) + size + payload


def test_multitrack_one_track() -> None:
    head = bytes([0x80 | 0x10 | 6, 0x00 | 1]) + b"hvc1"  # OneTrack, CodedFrames
    payload = (0).to_bytes(3, "big") + IDR
    assert isinstance(flv.parse_video_tag(head + _track(0, payload, sized=False), 0), Frame)
    other = flv.parse_video_tag(head + _track(2, payload, sized=False), 0)
    assert isinstance(other, Ignored)


def test_multitrack_many_tracks_keeps_track_zero() -> None:
    head = bytes([0x80 | 0x20 | 6, 0x10 | 1]) + b"hvc1"  # ManyTracks, CodedFrames
    t1 = _track(1, (0).to_bytes(3, "big") + NON_IDR)
    t0 = _track(0, (7).to_bytes(3, "big") + IDR)
    frame = flv.parse_video_tag(head + t1 + t0, 0)
    assert isinstance(frame, Frame)
    assert (frame.payload, frame.pts) == (IDR, 630)
    assert isinstance(flv.parse_video_tag(head + t1, 0), Ignored)


def test_multitrack_many_codecs() -> None:
    head = bytes([0x80 | 0x10 | 6, 0x20 | 1])  # ManyTracksManyCodecs, CodedFrames
    t1 = _track(1, b"\x12\x00", b"av01")
    t0 = _track(0, (0).to_bytes(3, "big") + IDR, b"avc1")
    frame = flv.parse_video_tag(head + t1 + t0, 0)
    assert isinstance(frame, Frame) and frame.codec == "h264"


def test_audio_multitrack_and_enhanced_aac() -> None:
    head = bytes([0x90 | 5, 0x10 | 1]) + b"mp4a"  # ManyTracks, CodedFrames
    body = head + _track(1, b"\x21\x10") + _track(0, b"\x21\x20")
    frame = flv.parse_audio_tag(body, 20)
    assert frame == Frame(TrackKind.AUDIO, "aac", 1800, 1800, True, b"\x21\x20")
    config = flv.parse_audio_tag(b"\x90mp4a\x12\x08", 0)
    assert isinstance(config, CodecConfig) and config.sample_rate == 44100


@pytest.mark.parametrize(
    ("body", "video"),
    [
        (b"\x57\x00", True),  # legacy command frame
        (b"\x22\x00\x00", True),  # H.263
        (b"\xd4hvc1\x02\x00\x09colorInfo", True),  # metadata
        (b"\xd0\x00", True),  # enhanced command frame
        (b"\x91vp08\x00", True),  # unsupported FourCC
        (b"\x95hvc1", True),  # MPEG2TSSequenceStart
        (b"\x2f\x00", False),  # MP3
        (b"", False),  # silence
        (b"\x94Opus\x01\x02\x00\x00\x00\x03", False),  # MultichannelConfig
        (b"\x91fLaC\x00", False),
        (b"\x17\x01\x00\x00\x00", True),  # empty frame
    ],
)
def test_ignored(body: bytes, video: bool) -> None:
    result = flv.parse_video_tag(body, 0) if video else flv.parse_audio_tag(body, 0)
    assert isinstance(result, Ignored)


@pytest.mark.parametrize(
    ("body", "video"),
    [
        (b"", True),
        (b"\x17", True),
        (b"\x17\x01\x00", True),
        (b"\x17\x01\x00\x00\x00\x00\x00\x00\x09\x65", True),  # NAL length beyond the tag
        (b"\x17\x05\x00\x00\x00", True),
        (b"\x17\x00\x00\x00\x00\x01\x42", True),  # truncated avcC
        (b"\x90hv", True),
        (b"\x91hvc1\x00", True),  # truncated CTS
        (b"\x97\x05\x00", True),  # truncated ModEx
        (b"\x96\x36hvc1", True),  # nested multitrack
        (b"\x96\x11hvc1\x00\x00\x00\x09", True),  # track size beyond the tag
        (b"\xaf", False),
        (b"\xaf\x02", False),
        (b"\xaf\x00\x00", False),
        (b"\x90Opus" + b"NotOpus!" + bytes(11), False),
    ],
)
def test_malformed(body: bytes, video: bool) -> None:
    with pytest.raises(MediaFormatError):
        flv.parse_video_tag(body, 0) if video else flv.parse_audio_tag(body, 0)


def test_two_byte_nal_lengths_are_normalized() -> None:
    record = bytearray(_x264_record())
    record[4] = 0xFD
    parser = FlvTagParser()
    config = parser.video(b"\x17\x00\x00\x00\x00" + bytes(record), 0)
    assert isinstance(config, CodecConfig)
    assert h264.parse_avcc(config.extradata).nal_length_size == 4
    nals = [b"\x65\x88\x84", b"\x06\x05\x01"]
    two = b"".join(len(n).to_bytes(2, "big") + n for n in nals)
    frame = parser.video(b"\x17\x01\x00\x00\x00" + two, 0)
    assert isinstance(frame, Frame) and frame.payload == nal.nals_to_length_prefixed(nals)


def test_build_refuses_what_flv_cannot_carry() -> None:
    with pytest.raises(ValueError):
        build_tag_body(Frame(TrackKind.VIDEO, "av1", 0, 90, True, b"\x12\x00"))
    with pytest.raises(ValueError):
        build_tag_body(Frame(TrackKind.VIDEO, "vp8", 0, 0, True, b"\x00"))
    with pytest.raises(ValueError):
        build_tag_body(Frame(TrackKind.DATA, "text", 0, 0, True, b"\x00"))


def test_on_metadata() -> None:
    video = CodecConfig(TrackKind.VIDEO, "h264", b"", width=1280, height=720, fps=30.0)
    audio = CodecConfig(TrackKind.AUDIO, "aac", b"", sample_rate=48000, channels=2)
    meta = flv.build_on_metadata(video, audio, video_kbps=2500, audio_kbps=128)
    assert meta == {
        "videocodecid": 7.0,
        "width": 1280.0,
        "height": 720.0,
        "framerate": 30.0,
        "videodatarate": 2500.0,
        "audiocodecid": 10.0,
        "audiosamplerate": 48000.0,
        "audiosamplesize": 16.0,
        "stereo": True,
        "audiodatarate": 128.0,
        "encoder": "relaycast",
    }
    av1 = CodecConfig(TrackKind.VIDEO, "av1", b"")
    assert flv.build_on_metadata(av1, None)["videocodecid"] == 1635135537.0


# ---------------------------------------------------------------- properties

_NAL = st.binary(min_size=1, max_size=40)
_MS = st.integers(min_value=0, max_value=2**31)


@st.composite
def frames(draw: st.DrawFn) -> Frame:
    codec = draw(st.sampled_from(["h264", "h265", "av1", "vp9", "aac", "opus"]))
    dts_ms = draw(_MS)
    video = codec in ("h264", "h265", "av1", "vp9")
    cts_ms = draw(st.integers(-(2**23), 2**23 - 1)) if codec in ("h264", "h265") else 0
    if codec in ("h264", "h265"):
        payload = nal.nals_to_length_prefixed(draw(st.lists(_NAL, min_size=1, max_size=4)))
    else:
        payload = draw(st.binary(min_size=1, max_size=64))
    track = TrackKind.VIDEO if video else TrackKind.AUDIO
    key = draw(st.booleans()) if video else True
    return Frame(track, codec, dts_ms * 90, (dts_ms + cts_ms) * 90, key, payload)


@given(frames())
def test_frame_round_trip(frame: Frame) -> None:
    body = build_tag_body(frame)
    ts = flv.tag_timestamp_ms(frame)
    parsed = flv.parse_video_tag(body, ts) if frame.track is TrackKind.VIDEO else None
    parsed = parsed or flv.parse_audio_tag(body, ts)
    assert parsed == frame


@pytest.mark.parametrize(("vcodec", "acodec", "options"), FILES)
def test_config_and_end_round_trip(vcodec: str, acodec: str | None, options: Options) -> None:
    if not has_codec(vcodec) or (acodec and not has_codec(acodec)):
        pytest.skip("codec not in this PyAV build")
    data = encode_flv(vcodec, 320, 240, 2, acodec, options)
    for kind, _, body in iter_flv_tags(data):
        parse = flv.parse_video_tag if kind == 9 else flv.parse_audio_tag
        result = parse(body, 0) if kind in (8, 9) else None
        if isinstance(result, CodecConfig):
            assert parse(build_tag_body(result), 0) == result
            end = EndOfSequence(result.track, result.codec)
            assert parse(build_tag_body(end), 0) == end


_REAL_TAGS = [
    body
    for kind, _, body in iter_flv_tags(encode_flv("libx264", 160, 96, 2, "aac", X264))
    if kind in (8, 9)
]


@settings(max_examples=300)
@given(st.binary(max_size=64), st.booleans())
def test_fuzz_only_format_errors(data: bytes, video: bool) -> None:
    for prefix in (b"", b"\x17\x00\x00\x00\x00\x01", b"\x90", b"\x97", b"\x96", b"\x95", b"\x9f"):
        try:
            parser = FlvTagParser()
            parser.video(prefix + data, 0) if video else parser.audio(prefix + data, 0)
        except MediaFormatError:
            pass


@settings(max_examples=300)
@given(st.integers(0, len(_REAL_TAGS) - 1), st.integers(0, 10**6), st.integers(1, 255))
def test_mutated_real_tags_only_format_errors(index: int, position: int, xor: int) -> None:
    body = bytearray(_REAL_TAGS[index][:400])
    body[position % len(body)] ^= xor
    parser = FlvTagParser()
    with contextlib.suppress(MediaFormatError):
        parser.video(bytes(body), 0)
    with contextlib.suppress(MediaFormatError):
        parser.audio(bytes(body), 0)


def test_accepts_memoryview_and_codec_enum_equality() -> None:
    result = flv.parse_audio_tag(memoryview(b"\xaf\x01\x21\x10"), 1)
    assert result == Frame(TrackKind.AUDIO, Codec.AAC, 90, 90, True, b"\x21\x10")


HVC1 = float(int.from_bytes(b"hvc1", "big"))


@pytest.mark.parametrize(
    ("metadata", "tracks"),
    [
        ({"videocodecid": 7.0, "audiocodecid": 10.0}, {TrackKind.VIDEO, TrackKind.AUDIO}),
        ({"videocodecid": HVC1, "audiocodecid": "mp4a"}, {TrackKind.VIDEO, TrackKind.AUDIO}),
        ({"videocodecid": 7.0}, {TrackKind.VIDEO}),
        ({"hasVideo": True, "hasAudio": False, "audiocodecid": 10.0}, {TrackKind.VIDEO}),
        ({"hasAudio": True, "audiocodecid": 2.0, "videocodecid": 7.0}, {TrackKind.VIDEO}),
        ({"videocodecid": float("nan"), "audiocodecid": True}, set()),
        ({"encoder": "obs"}, None),
    ],
)
def test_tracks_announced_by_on_metadata(
    metadata: dict[str, object], tracks: set[TrackKind] | None
) -> None:
    """Codec ids we cannot carry (MP3 = 2) are not waited for; garbage is no track."""
    assert flv.announced_tracks(metadata) == (None if tracks is None else frozenset(tracks))
