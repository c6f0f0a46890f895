"""Differential fuzzing: the compiled ingest claim and meter against their source.

The same random run of reads, frames (video, audio, data; VP9 keyframes that may
complete the picture size), configs and publisher changes, with and without plan
limits, goes through a compiled ``Claim`` over a compiled meter and bus stream, and a
pure one over pure twins. Every figure the meter gives health and the plan (bytes,
bitrate, frame rate, keyframe interval, last activity), the session's bytes, what the
stream published and what the claim asked of its manager (live, fail with the reason)
must be equal after every step.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import accel
from server.bus import PlanLimits, StreamGrant
from server.bus import registry as default_registry
from server.ingest import claim as default_claim
from server.ingest import meter as default_meter
from server.ingest.sessions import Live
from server.media import frame as default_frame
from server.media.frame import Codec, CodecConfig, TrackKind
from tests.accel_twins import pure_twins
from tests.unit.ingest.pump_driver import Owner, Publisher

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VPCC = bytes([1, 0, 0, 0, 0, 10, 0x82, 2, 2, 2, 0, 0])  # profile 0, level 1, 8 bit, 4:2:0
VP9_KEY_640x360 = bytes([0x82, 0x49, 0x83, 0x42, 0x00, 0x27, 0xF0, 0x16, 0x70]) + b"\x00" * 8


@pytest.fixture(scope="module")
def pure() -> dict[str, ModuleType]:
    if not accel.is_compiled(default_claim):
        pytest.skip("no compiled build to compare with (pip install -e . with a compiler)")
    return pure_twins()


_FRAME = st.tuples(
    st.just("frame"),
    st.sampled_from([TrackKind.VIDEO, TrackKind.VIDEO, TrackKind.AUDIO, TrackKind.DATA]),
    st.sampled_from([Codec.H264, Codec.VP9, Codec.AAC, "text"]),
    st.booleans(),
    st.sampled_from([3000, 3000, 3003, 0, -3000, 90_000]),
    st.sampled_from([b"", b"\x00\x00\x00\x01\x65", VP9_KEY_640x360]),
)
_STEP = st.one_of(
    st.tuples(st.just("read"), st.integers(0, 200_000), st.sampled_from([0.0, 0.1, 0.3, 1.0, 6.0])),
    _FRAME,
    _FRAME,
    _FRAME,
    st.tuples(
        st.just("config"), st.sampled_from([Codec.H264, Codec.VP9]), st.sampled_from([0, 640, 5000])
    ),
    st.tuples(st.just("publisher"), st.booleans()),
)
_LIMITS = st.none() | st.builds(
    PlanLimits,
    st.sampled_from([1000, 4000]),
    st.sampled_from([1000, 4000]),
    st.sampled_from([25.0, 60.0]),
    st.sampled_from([100_000, 10**7]),
)


def _run(twins: dict[str, ModuleType], limits: PlanLimits | None, steps: list[Any]) -> list[Any]:
    frame_type = twins["server.media.frame"].Frame
    grant = StreamGrant("s1", "env", True, 5, limits=limits)
    stream = twins["server.bus.registry"].Registry().create("s1")
    publisher, other = Publisher(), Publisher()
    live = Live(
        grant, stream, publisher=publisher, meter=twins["server.ingest.meter"].IngestMeter()
    )
    owner = Owner()
    claim = twins["server.ingest.claim"].Claim(owner, live, publisher)
    now, dts = 0.0, 0
    seen: list[Any] = []
    for step in steps:
        if step[0] == "read":
            now += step[2]
            claim.received(step[1], now)
        elif step[0] == "frame":
            _, track, codec, key, delta, payload = step
            dts += delta
            claim.frame(frame_type(track, codec, dts, dts + 3000, key, payload))
        elif step[0] == "config":
            _, codec, width = step
            extradata = VPCC if codec == Codec.VP9 else b"\x01\x64\x00\x1f"
            claim.config(CodecConfig(TrackKind.VIDEO, codec, extradata, width=width, height=width))
        else:
            live.publisher = publisher if step[1] else other
        meter = live.meter
        seen.append(
            (
                claim.current,
                meter.bytes_in,
                meter.video_frames,
                meter.keyframe_interval,
                meter.last_activity,
                meter.bitrate(now),
                meter.fps(),
                live.session_bytes,
                live.live,
                stream.stats().frames_published,
                stream.video_config,
                list(owner.asked),
            )
        )
    return seen


def _default_twins() -> dict[str, ModuleType]:
    return {
        "server.media.frame": default_frame,
        "server.bus.registry": default_registry,
        "server.ingest.meter": default_meter,
        "server.ingest.claim": default_claim,
    }


@FUZZ
@given(_LIMITS, st.lists(_STEP, min_size=1, max_size=60))
def test_claims_and_meters_agree(
    pure: dict[str, ModuleType], limits: PlanLimits | None, steps: list[Any]
) -> None:
    assert _run(_default_twins(), limits, steps) == _run(pure, limits, steps)


def test_the_compiled_modules_are_the_ones_compared(pure: dict[str, ModuleType]) -> None:
    assert accel.is_compiled(default_claim) and accel.is_compiled(default_meter)
    assert not accel.is_compiled(pure["server.ingest.claim"])
    assert not accel.is_compiled(pure["server.ingest.meter"])
    assert pure["server.ingest.claim"].Claim is not default_claim.Claim
    assert pure["server.ingest.meter"].IngestMeter is not default_meter.IngestMeter
