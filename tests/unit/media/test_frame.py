"""``TrackKind`` is the key of the per-track dicts every frame passes through."""

from __future__ import annotations

import pickle

from server.media.frame import Codec, Frame, TrackKind


def test_track_kinds_hash_in_c_by_identity_and_stay_usable_keys() -> None:
    # Enum.__hash__ is a Python call per lookup; the members are singletons compared by
    # identity, so the identity hash (computed in C) is the same contract, cheaper
    assert vars(TrackKind)["__hash__"] is object.__hash__
    keys = {kind: kind.value for kind in TrackKind}
    assert keys[TrackKind("video")] == "video" and len(keys) == 3
    assert pickle.loads(pickle.dumps(TrackKind.AUDIO)) is TrackKind.AUDIO
    assert hash(TrackKind.VIDEO) == object.__hash__(TrackKind.VIDEO)


def test_frames_pickle_as_a_constructor_call_and_come_back_equal() -> None:
    # worker processes send frames by the batch over a pipe: the cheap reduce must keep
    # every field, the enum members and the codec's type
    frames = [
        Frame(TrackKind.VIDEO, Codec.H264, 3000, 6000, True, b"\x00\x00\x00\x01\x65"),
        Frame(TrackKind.AUDIO, Codec.AAC, 1920, 1920, True, b"\x21"),
        Frame(TrackKind.DATA, "text", 0, 0, False, b""),
    ]
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        back = pickle.loads(pickle.dumps(frames, protocol=protocol))
        assert back == frames
        assert back[0].track is TrackKind.VIDEO and type(back[0].codec) is Codec
        assert type(back[2].codec) is str
    assert Frame.__reduce__ is not object.__reduce__
