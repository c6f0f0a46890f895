"""``Pacer``: frames go out at their time, those due within ``LEAD`` with them."""

from __future__ import annotations

from server.media.frame import TIMEBASE
from server.playout.pacing import LATE, LEAD, Pacer


def test_the_first_frame_anchors_the_clock_and_goes_at_once() -> None:
    pacer = Pacer()
    assert pacer.wait(5 * TIMEBASE, now=100.0) == 0.0
    assert pacer.wait(6 * TIMEBASE, now=100.0) == 1.0  # one second of media later


def test_a_wake_up_takes_every_frame_due_within_lead() -> None:
    pacer = Pacer()
    pacer.wait(0, now=0.0)
    frame = TIMEBASE // 30
    due = [n * frame for n in range(1, 10)]
    # woken at the first frame's time: it and the frames of the next LEAD go together
    now = due[0] / TIMEBASE
    taken = [pts for pts in due if pacer.wait(pts, now) == 0.0]
    assert taken == [pts for pts in due if pts / TIMEBASE <= now + LEAD]
    assert len(taken) == 2  # at 30 fps, 50 ms holds this frame and the next
    # the first that is not due is waited for until its own time, not LEAD before it
    later = due[len(taken)]
    assert abs(pacer.wait(later, now) - (later / TIMEBASE - now)) < 1e-9
    assert pacer.underruns == 0


def test_a_worker_far_behind_re_anchors_instead_of_bursting() -> None:
    pacer = Pacer()
    pacer.wait(0, now=0.0)
    late = 1.0 + LATE + 0.1  # the frame at 1 s shows up this late
    assert pacer.wait(TIMEBASE, now=late) == 0.0
    assert pacer.underruns == 1
    assert pacer.wait(2 * TIMEBASE, now=late) == 1.0  # the clock runs from there
    pacer.reset()
    assert pacer.wait(9 * TIMEBASE, now=50.0) == 0.0
