"""The channel's output clock in integers against the exact rational model it replaced.

``Timeline`` keeps the audio position as an integer numerator over a growing
denominator (``Fraction`` arithmetic cost the worker about 1.5 ms a second). Here a
reference written with ``Fraction`` — the previous implementation — and the integer one
get the same random sequences of calls (frame rates, sample rates, targets that are
whole ticks and targets that are fractions) and must answer the same, call for call.
"""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from server.media.frame import TIMEBASE
from server.playout.timeline import AAC_FRAME_TICKS, AUDIO_OVERLAP_DROP, Timeline


class RationalTimeline:
    """The reference: every position an exact ``Fraction``."""

    def __init__(self, fps: int, video_at: int, audio_at: int) -> None:
        self.frame_ticks = Fraction(TIMEBASE, fps)
        self.origin = video_at
        self.slots = 0
        self.audio_end = Fraction(audio_at)

    @property
    def video_end(self) -> int:
        return self.origin + round(self.slots * self.frame_ticks)

    def take_slot(self) -> int:
        pts = self.video_end
        self.slots += 1
        return pts

    def audio_fed(self, samples: int, rate: int) -> None:
        self.audio_end += Fraction(samples * TIMEBASE, rate)

    def silence_until(self, target: int | Fraction) -> int:
        frames = int((target - self.audio_end) // AAC_FRAME_TICKS)
        if frames <= 0:
            return 0
        self.audio_end += frames * AAC_FRAME_TICKS
        return frames * AAC_FRAME_TICKS

    def close_item(self) -> int:
        return self.silence_until(self.video_end + AAC_FRAME_TICKS - 1)

    def audio_verdict(self, target: int | Fraction) -> tuple[str, int]:
        if self.audio_end - target > AUDIO_OVERLAP_DROP * TIMEBASE:
            return "drop", 0
        return "feed", self.silence_until(target)


@pytest.mark.parametrize("fps", [25, 30, 24, 60, 7, 50])
@pytest.mark.parametrize("seed", range(4))
def test_integer_timeline_answers_as_the_rational_one(fps: int, seed: int) -> None:
    rng = random.Random(seed * 100 + fps)
    start_video, start_audio = rng.randrange(0, 10**9), rng.randrange(0, 10**9)
    ours, ref = (
        Timeline(fps, start_video, start_audio),
        RationalTimeline(fps, start_video, start_audio),
    )
    rates = [48_000, 44_100, 22_050, 32_000, 8_000, 11_025]
    for step in range(4000):
        op = rng.randrange(6)
        if op == 0:
            assert ours.take_slot() == ref.take_slot()
        elif op == 1:
            samples, rate = rng.choice([1024, 960, 1, rng.randrange(1, 5000)]), rng.choice(rates)
            ours.audio_fed(samples, rate)
            ref.audio_fed(samples, rate)
        elif op in (2, 3):
            # an audio frame's place: near the audio's end, as whole ticks or exact time
            around = ref.audio_end + rng.randrange(-3 * AAC_FRAME_TICKS, 3 * AAC_FRAME_TICKS)
            exact = around + Fraction(rng.randrange(0, 1000), rng.choice([7, 1000, 44_100]))
            target: int | Fraction = round(around) if op == 2 else exact
            if rng.random() < 0.1:  # exactly on the drop bound
                target = ref.audio_end - AAC_FRAME_TICKS // 2
            assert ours.audio_verdict(target) == ref.audio_verdict(target), step
        elif op == 4:
            lag = rng.choice([0, round(2.0 * TIMEBASE)])
            assert ours.silence_until(ours.video_end - lag) == ref.silence_until(
                ref.video_end - lag
            )
        else:
            assert ours.close_item() == ref.close_item()
        assert ours.audio_end == ref.audio_end and ours.video_end == ref.video_end, step


def test_slot_times_round_half_to_even_like_a_fraction() -> None:
    """At 60 fps a slot is 1500 ticks; at 7 fps 12857.142...: and where a slot time falls
    on a half tick (fps even, e.g. 80 000 fps-like grids) rounding must be banker's."""
    for fps in (7, 60, 24_000, 80_000, 180_000):
        timeline = Timeline(fps, 0, 0)
        for slot in range(0, 5000, 7):
            assert timeline.slot_pts(slot) == round(slot * Fraction(TIMEBASE, fps)), (fps, slot)


def test_the_audio_end_is_exact_across_sample_rates() -> None:
    timeline = Timeline(30, 0, 5)
    timeline.audio_fed(441, 44_100)  # 900 ticks
    timeline.audio_fed(1, 48_000)  # 15/8 tick
    timeline.audio_fed(1, 11_025)  # 8.163... ticks
    assert timeline.audio_end == 5 + 900 + Fraction(15, 8) + Fraction(TIMEBASE, 11_025)
    assert timeline.silence_until(5 + 900 + 2 * AAC_FRAME_TICKS + 20) == 2 * AAC_FRAME_TICKS
