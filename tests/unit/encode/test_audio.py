import itertools

import av

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
