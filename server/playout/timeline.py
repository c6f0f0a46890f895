"""The channel's one output clock: video slots at the profile's rate, audio beside them.

Items come and go; the output never restarts. Video is a grid of slots (slot ``n`` is
shown at ``origin + n / fps``) and each item fills whole slots from its own frames by
timestamp (the latest frame at or before a slot's time), which converts any frame
rate. Audio is the encoder's continuous sample count; this module tracks where it is
and says how much silence keeps it level with the video: inside an item without
audio, across gaps, and at every item end. Pure: no PyAV, no clock, so a day of
playout is checked at full speed.

Integer arithmetic only: the worker asks where the video is 30 times a second and
places ~47 audio frames a second, and ``Fraction`` did that at a few microseconds an
operation (about 1 ms of the worker's CPU per second of output). The audio position
is kept exactly as a numerator over a denominator that grows (lcm) only when a sample
rate needs it, so results are those of exact rational arithmetic.
"""

from __future__ import annotations

from fractions import Fraction
from math import gcd

from server.media.frame import TIMEBASE

AAC_FRAME_TICKS = 1024 * TIMEBASE // 48_000
"""One AAC frame at 48 kHz (1920 ticks): the grain of inserted silence."""

AUDIO_LAG_WITH_TRACK = 2.0
"""Seconds an item's own audio may trail its video before the gap is filled with
silence (a file's audio and video packets are interleaved this loosely at most)."""

AUDIO_OVERLAP_DROP = AAC_FRAME_TICKS / 2 / TIMEBASE
"""Seconds (half an AAC frame) the encoded audio may run ahead of where an item's audio
frame belongs before that frame is dropped. Files' audio often outlasts their video by a
frame or two (AAC padding, rounding); a looser bound let that surplus pile up item after
item (a 24 h simulation drifted past a video frame within the first hour)."""

_OVERLAP_TICKS = AAC_FRAME_TICKS // 2
"""``AUDIO_OVERLAP_DROP`` in ticks (960, exact)."""


def _ratio(ticks: int | Fraction) -> tuple[int, int]:
    """``ticks`` as (numerator, denominator)."""
    if isinstance(ticks, int):
        return ticks, 1
    return ticks.numerator, ticks.denominator


class Timeline:
    """Where the output is, in 90 kHz ticks, across every item of one worker."""

    def __init__(self, fps: int, video_at: int, audio_at: int) -> None:
        self.fps = fps
        self.frame_ticks = Fraction(TIMEBASE, fps)
        self._origin = video_at
        self.slots = 0
        self._num = audio_at
        """The audio's end is ``_num / _den`` ticks."""
        self._den = 1
        self._steps: dict[int, tuple[int, int]] = {}
        """Per sample rate: (ticks per sample times ``q``, ``q``): one sample lasts
        ``TIMEBASE / rate`` = that over ``q`` ticks."""

    @property
    def audio_end(self) -> Fraction:
        """Where the next audio sample goes, in ticks (exact)."""
        return Fraction(self._num, self._den)

    def slot_pts(self, slot: int) -> int:
        """``origin + round(slot * TIMEBASE / fps)``, rounding half to even as
        ``round`` of a ``Fraction`` does."""
        q, r = divmod(slot * TIMEBASE, self.fps)
        if 2 * r > self.fps or (2 * r == self.fps and q & 1):
            q += 1
        return self._origin + q

    @property
    def video_end(self) -> int:
        """Where the next video slot is shown."""
        return self.slot_pts(self.slots)

    def take_slot(self) -> int:
        pts = self.video_end
        self.slots += 1
        return pts

    def audio_fed(self, samples: int, rate: int) -> None:
        step = self._steps.get(rate)
        if step is None:
            g = gcd(TIMEBASE, rate)
            step = self._steps[rate] = (TIMEBASE // g, rate // g)
        per_sample, q = step
        if self._den % q:
            den = self._den * q // gcd(self._den, q)
            self._num *= den // self._den
            self._den = den
        self._num += samples * per_sample * (self._den // q)

    def silence_until(self, target: int | Fraction) -> int:
        """Whole AAC frames of silence that bring the audio up to ``target`` without
        passing it; counted as fed. Returns ticks (a multiple of 1920)."""
        tn, td = _ratio(target)
        frames = (tn * self._den - self._num * td) // (AAC_FRAME_TICKS * self._den * td)
        if frames <= 0:
            return 0
        self._num += frames * AAC_FRAME_TICKS * self._den
        return frames * AAC_FRAME_TICKS

    def close_item(self) -> int:
        """At an item's end, silence up to the video; the audio then leads the video by
        less than one AAC frame (21 ms, under a video frame), never more, so nothing
        accumulates across items."""
        return self.silence_until(self.video_end + AAC_FRAME_TICKS - 1)

    def audio_verdict(self, target: int | Fraction) -> tuple[str, int]:
        """An item's audio frame belongs at ``target`` (ticks): ``("drop", 0)`` when it
        overlaps what was encoded by more than ``AUDIO_OVERLAP_DROP``, else ``("feed",
        silence ticks to insert first)``."""
        tn, td = _ratio(target)
        if self._num * td - tn * self._den > _OVERLAP_TICKS * self._den * td:
            return "drop", 0
        return "feed", self.silence_until(target)


class FrameRate:
    """Which output slots an item's frames fill, by timestamp (seconds into the item).

    ``frame(t)`` for every decoded frame in order returns how many slots still show
    the previous frame; ``end(t)`` how many the last frame fills up to the item's end.
    A slot at ``k / fps`` shows the latest frame whose time is at or before it.
    """

    def __init__(self, fps: int) -> None:
        self.fps = fps
        self.filled = 0  # slots given a frame so far, in this item
        self._seen = False

    def _slots_before(self, t: float) -> int:
        """Slots whose time is strictly before ``t``: ceil(t * fps), with a tolerance of
        a thousandth of a slot for timestamps rounded by the container."""
        exact = t * self.fps
        whole = int(exact)
        if exact - whole > 1e-3:
            whole += 1
        return max(0, whole)

    def frame(self, t: float) -> int:
        """Slots the previous frame fills before this one takes over. The first frame
        also fills the slots before it (an item whose video starts late)."""
        target = self._slots_before(t)
        if not self._seen:
            self._seen = True
            self.filled = target
            return target  # the caller shows the first frame there
        count = max(0, target - self.filled)
        self.filled += count
        return count

    def end(self, t: float) -> int:
        """Slots the last frame fills so the item lasts until ``t``: none when no slot
        falls in its time (it is dropped, as converting 30 to 25 fps drops one frame in
        six), one for an item that has shown nothing yet (a single picture)."""
        count = max(1 if self._seen and not self.filled else 0, self._slots_before(t) - self.filled)
        self.filled += count
        return count
