"""``Frame`` (compiled since issue 20) and its pure twin behave the same; ``TrackKind`` is
the key of the per-track dicts every frame passes through."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import sys
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server import accel
from server.media import frame as default_frame
from server.media.frame import Codec, Frame, TrackKind
from tests.accel_twins import pure_twins


def test_track_kinds_hash_in_c_by_identity_and_stay_usable_keys() -> None:
    # Enum.__hash__ is a Python call per lookup; the members are singletons compared by
    # identity, so the identity hash (computed in C) is the same contract, cheaper
    assert vars(TrackKind)["__hash__"] is object.__hash__
    keys = {kind: kind.value for kind in TrackKind}
    assert keys[TrackKind("video")] == "video" and len(keys) == 3
    assert pickle.loads(pickle.dumps(TrackKind.AUDIO)) is TrackKind.AUDIO
    assert hash(TrackKind.VIDEO) == object.__hash__(TrackKind.VIDEO)


@pytest.fixture(params=["default", "pure"])
def frame_class(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> type[Frame]:
    """The imported ``Frame`` (compiled when built) and the pure twin's. Pickle finds a
    class by its module's attribute, so the pure run points ``server.media.frame.Frame``
    at the twin, as a process running pure Python has it."""
    if request.param == "default":
        return Frame
    twin: type[Frame] = pure_twins()["server.media.frame"].Frame
    monkeypatch.setattr(sys.modules["server.media.frame"], "Frame", twin)
    return twin


def test_the_compiled_class_is_the_one_tested() -> None:
    pure = pure_twins()["server.media.frame"]
    assert pure.INTERPRETED and not accel.is_compiled(pure)
    if accel.is_compiled(default_frame):
        assert not default_frame.INTERPRETED and pure.Frame is not Frame
    assert (Frame.__module__, Frame.__qualname__) == ("server.media.frame", "Frame")


def _frames(cls: type[Frame]) -> list[Frame]:
    return [
        cls(TrackKind.VIDEO, Codec.H264, 3000, 6000, True, b"\x00\x00\x00\x01\x65"),
        cls(TrackKind.AUDIO, Codec.AAC, 1920, 1920, True, b"\x21"),
        cls(TrackKind.DATA, "text", 0, 0, False, b""),
    ]


def test_frames_pickle_as_a_constructor_call_and_come_back_equal(frame_class: type[Frame]) -> None:
    # worker processes send frames by the batch over a pipe: the cheap reduce must keep
    # every field, the enum members and the codec's type
    frames = _frames(frame_class)
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        back = pickle.loads(pickle.dumps(frames, protocol=protocol))
        assert back == frames and all(type(f) is frame_class for f in back)
        assert back[0].track is TrackKind.VIDEO and type(back[0].codec) is Codec
        assert type(back[2].codec) is str
    assert frames[0].__reduce__() == (
        frame_class,
        (TrackKind.VIDEO, "h264", 3000, 6000, True, b"\x00\x00\x00\x01\x65"),
    )
    assert copy.copy(frames[1]) == frames[1] and copy.deepcopy(frames[2]) == frames[2]


def test_frames_are_frozen_dataclasses(frame_class: type[Frame]) -> None:
    video = _frames(frame_class)[0]
    for mutate in (lambda: setattr(video, "dts", 0), lambda: delattr(video, "payload")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            mutate()
    # a name that is no field: refused too; the pure class says so with a TypeError, as
    # every frozen slots dataclass does on Python 3.11 (its __setattr__'s super() still
    # names the class that slots=True replaced)
    with pytest.raises((dataclasses.FrozenInstanceError, TypeError)):
        video.extra = 1  # type: ignore[attr-defined]
    assert not hasattr(video, "__dict__")
    assert [f.name for f in dataclasses.fields(video)] == list(frame_class.__match_args__)
    assert frame_class.__match_args__ == ("track", "codec", "dts", "pts", "keyframe", "payload")
    moved = dataclasses.replace(video, dts=0, pts=90)
    assert type(moved) is frame_class and (moved.dts, moved.cts, moved.payload) == (
        0,
        90,
        video.payload,
    )
    assert (
        frame_class(**{f.name: getattr(video, f.name) for f in dataclasses.fields(video)}) == video
    )


_FIELDS = st.tuples(
    st.sampled_from(TrackKind),
    st.sampled_from([*Codec, "text"]),
    st.integers(-(2**40), 2**40),
    st.integers(-(2**40), 2**40),
    st.booleans(),
    st.binary(max_size=16),
)


def _observed(
    cls: type[Frame], fields: tuple[TrackKind, str, int, int, bool, bytes]
) -> Iterator[object]:
    frame = cls(*fields)
    yield repr(frame)
    yield hash(frame)
    yield dataclasses.astuple(frame)
    yield frame.cts
    yield frame == cls(*fields), frame != cls(*fields[:-1], fields[-1] + b"x")
    yield frame == fields, frame.__eq__(fields)
    yield frame.__reduce__()[1]


@pytest.fixture(scope="module")
def pure_frame() -> type[Frame]:
    """Loaded once, outside the examples (the first load imports every twin)."""
    twin: type[Frame] = pure_twins()["server.media.frame"].Frame
    return twin


@settings(deadline=None)
@given(_FIELDS)
def test_the_twins_agree_on_every_frame(
    pure_frame: type[Frame], fields: tuple[TrackKind, str, int, int, bool, bytes]
) -> None:
    pure = pure_frame
    assert list(_observed(Frame, fields)) == list(_observed(pure, fields))
