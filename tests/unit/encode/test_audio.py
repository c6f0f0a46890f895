import itertools

import av
import numpy

from server.encode import AudioEncoder, AudioProfile
from server.media.aac import parse_asc
from tests.unit.encode.media import tone


def test_resamples_to_the_profile_and_stamps_a_gapless_timeline() -> None:
    encoder = AudioEncoder(AudioProfile())
    asc = parse_asc(encoder.config.extradata)
    assert (asc.sample_rate, asc.channel_config) == (48_000, 2)
    frames = []
    for i in range(44):  # one second of 44.1 kHz mono in 1002-sample chunks
        frames += encoder.encode(tone(1002, 44_100, start=i * 1002), pts=9000)
    frames += encoder.flush()
    assert frames[0].dts == 9000
    assert {b.dts - a.dts for a, b in itertools.pairwise(frames)} == {1920}
    assert 46 <= len(frames) <= 49


def test_silence_and_reset() -> None:
    encoder = AudioEncoder(AudioProfile(channels=1, sample_rate=44_100))
    frames = encoder.silence(90_000)
    assert len(frames) >= 40
    encoder.reset(1_000_000)
    later = encoder.silence(90_000) + encoder.flush()
    assert later[0].dts == 1_000_000
    decoder = av.CodecContext.create("aac", "r")
    decoder.extradata = encoder.config.extradata
    decoded = []
    for f in frames + later:
        decoded += decoder.decode(av.Packet(f.payload))
    assert decoded and all(d.sample_rate == 44_100 for d in decoded)


def _stereo_fltp(samples: int, start: int) -> av.AudioFrame:
    """The tone as 48 kHz stereo fltp: what an AAC decoder gives."""
    packed = tone(samples, 48_000, "stereo", start).to_ndarray().reshape(-1, 2)
    planar = numpy.ascontiguousarray(packed.T.astype("float32") / 32768)
    frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout="stereo")
    frame.sample_rate = 48_000
    return frame


def _encoded(sizes: list[int], convert: bool = False) -> list[tuple[int, bytes]]:
    encoder = AudioEncoder(AudioProfile())
    out, start = [], 0
    for size in sizes:
        frame = tone(size, 48_000, "stereo", start) if convert else _stereo_fltp(size, start)
        frame.sample_rate = 48_000
        out += encoder.encode(frame, pts=0)
        start += size
    out += encoder.flush()
    return [(f.pts, f.payload) for f in out]


def test_frames_that_are_one_aac_frame_of_the_profile_encode_as_the_resampled_path() -> None:
    """1024-sample fltp 48 kHz stereo frames skip the resampler, but only while it holds
    nothing: mixed sizes (some through it, some around it) and s16 (always through it)
    must give the same packets, byte for byte, at the same times."""
    whole = _encoded([1024] * 40)
    mixed = _encoded([1024, 512, 1024, 512, 700, 1024, 1348, 1024, 1000, 24] * 5)
    converted = _encoded([1024] * 40, convert=True)
    assert len(whole) >= 40
    assert [pts for pts, _ in whole] == [k * 1920 for k in range(len(whole))]
    assert whole == mixed == converted
