"""Output timestamps: start at zero, continue across encoder reconnects, never go back."""

from __future__ import annotations

from server.media.frame import TICKS_PER_MS, Frame, TrackKind
from server.push.timeline import RESUME_GAP, Timeline

V, A = TrackKind.VIDEO, TrackKind.AUDIO


def f(track: TrackKind, dts: int, cts: int = 0) -> Frame:
    return Frame(track, "h264" if track is V else "aac", dts, dts + cts, track is V, b"x")


def test_rebases_to_zero_and_keeps_composition_offsets() -> None:
    t = Timeline()
    first = t.shift(f(V, 900_000, cts=6000))
    assert (first.dts, first.pts) == (0, 6000)
    assert t.shift(f(A, 901_800)).dts == 1800
    assert t.last_ms == 1800 // TICKS_PER_MS


def test_discontinuity_continues_after_the_last_timestamp() -> None:
    t = Timeline()
    t.shift(f(V, 10_000))
    t.shift(f(V, 13_000))
    t.discontinuity()
    resumed = t.shift(f(V, 0))  # the encoder restarted its clock
    assert resumed.dts == 3000 + RESUME_GAP
    assert t.shift(f(V, 3000)).dts == 6000 + RESUME_GAP


def test_never_goes_back_per_track() -> None:
    t = Timeline()
    t.shift(f(V, 0))
    t.shift(f(A, 5000))
    early = t.shift(f(A, 4000))
    assert early.dts == 5000 and early.pts == 5000
    assert t.shift(f(V, -100)).dts == 0  # before the first frame: clamped, not negative


def test_unshifted_frames_are_passed_through() -> None:
    t = Timeline()
    frame = f(V, 0)
    assert t.shift(frame) is frame
