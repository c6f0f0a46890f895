"""A/V drift of channel playout over a day, simulated at full speed (``--scenario channel``
reports it next to the CPU figures; tests/unit/playout/test_drift.py runs a shorter span).

The worker's clock arithmetic is all in ``Timeline`` and ``FrameRate`` (pure); this
drives them the way ``worker._Item`` does, item after item, with files whose frame
rates, sample rates and audio spans differ, and a resampler that converts sample
counts exactly (with its remainder carried, as libswresample does).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from server.media.frame import TIMEBASE
from server.playout.timeline import AUDIO_LAG_WITH_TRACK, FrameRate, Timeline

OUT_FPS = 30


@dataclass(frozen=True)
class Item:
    seconds: float
    fps: Fraction
    rate: int | None  # audio sample rate; None: no audio
    audio_from: float = 0.0
    audio_until: float | None = None  # None: as long as the video


ITEMS = [
    Item(7.3, Fraction(30000, 1001), 44_100),
    Item(12.04, Fraction(25), 48_000),
    Item(5.5, Fraction(60), None),
    Item(9.99, Fraction(24), 48_000, audio_until=9.69),  # audio ends early
    Item(3.2, Fraction(30), 44_100, audio_from=0.05),  # audio starts late
]


class Resampler:
    """Exact sample-rate conversion to 48 kHz, the fraction carried to the next call."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.carry = Fraction(0)

    def resample(self, samples: int) -> int:
        exact = self.carry + Fraction(samples * 48_000, self.rate)
        out = int(exact)
        self.carry = exact - out
        return out


def play(timeline: Timeline, item: Item) -> None:
    """One item as ``worker._Item`` plays it: video frames fill slots by timestamp,
    audio frames are placed at their time (silence before, overlap dropped), and the
    item's end closes the audio up to the video."""
    rate = FrameRate(OUT_FPS)
    origin = timeline.video_end
    lag = round(AUDIO_LAG_WITH_TRACK * TIMEBASE) if item.rate else 0
    frames = int(item.seconds * item.fps)
    video_times = [float(k / item.fps) for k in range(frames)]
    audio_events: list[tuple[float, int]] = []
    if item.rate is not None:
        end = item.audio_until if item.audio_until is not None else item.seconds
        step = Fraction(1024, item.rate)
        k = 0
        while item.audio_from + float(k * step) < end:
            audio_events.append((item.audio_from + float(k * step), 1024))
            k += 1
    resampler = Resampler(item.rate or 48_000)
    events = sorted(
        [(t, 0, 0) for t in video_times] + [(t, 1, n) for t, n in audio_events],
        key=lambda e: (e[0], e[1]),
    )
    last_end = 0.0
    for t, kind, samples in events:
        if kind == 0:
            count = rate.frame(t)
            for _ in range(count):
                timeline.take_slot()
            timeline.silence_until(timeline.video_end - lag)
            last_end = max(last_end, t + float(1 / item.fps))
        else:
            target = origin + Fraction(t).limit_denominator(10**6) * TIMEBASE
            verdict, _silence = timeline.audio_verdict(Fraction(target))
            if verdict == "feed":
                timeline.audio_fed(resampler.resample(samples), 48_000)
    for _ in range(rate.end(last_end)):
        timeline.take_slot()
    timeline.close_item()


@dataclass(frozen=True)
class Drift:
    items: int
    seconds: float
    final_skew: float
    """Audio end minus video end after the last item, seconds."""
    worst_skew: float
    """The largest |audio - video| after any item, seconds."""
    worst_boundary: float
    """The largest difference between an item's length and the output it made, seconds."""

    @property
    def frame(self) -> float:
        return 1 / OUT_FPS


def simulate(hours: float) -> Drift:
    timeline = Timeline(OUT_FPS, 0, 0)
    played = 0.0
    worst = worst_boundary = 0.0
    index = 0
    while played < hours * 3600:
        item = ITEMS[index % len(ITEMS)]
        before = timeline.video_end
        play(timeline, item)
        index += 1
        played += item.seconds
        shown = (timeline.video_end - before) / TIMEBASE
        worst_boundary = max(worst_boundary, abs(shown - item.seconds))
        worst = max(worst, abs(float((timeline.audio_end - timeline.video_end) / TIMEBASE)))
    final = float((timeline.audio_end - timeline.video_end) / TIMEBASE)
    return Drift(index, timeline.video_end / TIMEBASE, final, worst, worst_boundary)
