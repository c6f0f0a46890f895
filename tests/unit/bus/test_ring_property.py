"""Property tests of the reader ring against a model of what it promises."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.bus import ConfigChange, Discontinuity, Reader, Stream
from server.media.frame import CodecConfig, Frame, TrackKind

from .helpers import AUDIO_CONFIG, VIDEO_CONFIG, VIDEO_CONFIG_2

# Against the compiled modules and their pure-Python twins (tests/accel_twins.py).
pytestmark = pytest.mark.usefixtures("implementation")

_VIDEO_OP = st.tuples(st.just("video"), st.booleans(), st.integers(1, 300))
_AUDIO_OP = st.tuples(st.just("audio"), st.just(False), st.integers(1, 50))
# Publishing is weighted over reading so that rings actually fill and overflow.
OPS = st.lists(
    st.one_of(
        _VIDEO_OP,
        _VIDEO_OP,
        _AUDIO_OP,
        _AUDIO_OP,
        st.tuples(st.just("config"), st.booleans(), st.just(0)),
        st.tuples(st.just("discontinuity"), st.just(False), st.just(0)),
        st.tuples(st.just("read"), st.just(False), st.integers(1, 40)),
    ),
    max_size=300,
)


@dataclass
class Model:
    """What was published, so deliveries can be checked against it."""

    published: list[Frame] = field(default_factory=list)
    video_config_at: dict[int, CodecConfig | None] = field(default_factory=dict)
    discontinuities_before: dict[int, int] = field(default_factory=dict)
    video_seen_before: dict[int, bool] = field(default_factory=dict)


@dataclass
class Seen:
    """What the consumer has observed so far."""

    video_config: CodecConfig | None = None
    last_index: int = -1
    discontinuities_since_frame: int = 0


def _check_delivery(reader: Reader, model: Model, budget: int, seen: Seen) -> None:
    for _ in range(budget):
        item = reader.next_nowait()
        if item is None:
            return
        if isinstance(item, ConfigChange):
            if item.config.track is TrackKind.VIDEO:
                seen.video_config = item.config
            continue
        if isinstance(item, Discontinuity):
            seen.discontinuities_since_frame += 1
            continue
        assert isinstance(item, Frame)
        index = int.from_bytes(item.payload[:4], "big")
        last = seen.last_index
        assert index > last, "frames out of order or duplicated"
        if index != last + 1 and model.video_seen_before[index]:
            assert item.track is TrackKind.VIDEO and item.keyframe, "resync must start at a key"
        if item.track is TrackKind.VIDEO:
            assert seen.video_config == model.video_config_at[index], "config not in band"
        before = model.discontinuities_before[last] if last >= 0 else 0
        if model.discontinuities_before[index] > before:
            assert seen.discontinuities_since_frame > 0, "discontinuity lost"
        seen.discontinuities_since_frame = 0
        seen.last_index = index


@settings(max_examples=200, deadline=None)
@given(OPS, st.integers(16, 40), st.integers(400, 4000))
def test_ring_invariants(ops: list[tuple[str, bool, int]], max_frames: int, max_bytes: int) -> None:
    stream = Stream("p")
    reader = stream.reader("r", max_frames=max_frames, max_bytes=max_bytes)
    model = Model()
    current_video: CodecConfig | None = None
    discontinuities = 0
    seen = Seen()
    video_seen = False
    for op, flag, size in ops:
        if op in ("video", "audio"):
            index = len(model.published)
            payload = index.to_bytes(4, "big") + bytes(size)
            track = TrackKind.VIDEO if op == "video" else TrackKind.AUDIO
            key = flag if op == "video" else True
            frame = Frame(track, "h264" if op == "video" else "aac", index, index, key, payload)
            video_seen = video_seen or op == "video"
            model.published.append(frame)
            model.video_config_at[index] = current_video
            model.discontinuities_before[index] = discontinuities
            model.video_seen_before[index] = video_seen
            stream.publish(frame)
        elif op == "config":
            current_video = VIDEO_CONFIG if flag else VIDEO_CONFIG_2
            video_seen = True
            stream.set_config(current_video)
            stream.set_config(AUDIO_CONFIG)
        elif op == "discontinuity":
            discontinuities += 1
            stream.mark_discontinuity()
        else:
            _check_delivery(reader, model, size, seen)
        stats = reader.stats()
        assert stats.queued_items <= max_frames
        assert stats.queued_bytes <= max_bytes
        assert stats.delivered_frames + stats.dropped_frames + stats.queued_frames == len(
            model.published
        )
    _check_delivery(reader, model, 10**6, seen)
