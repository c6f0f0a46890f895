"""The destination state machine, driven with a fake clock (no sockets, no sleeps)."""

from __future__ import annotations

from server.push.backoff import Backoff
from server.push.status import PushState, PushStatus


def machine() -> PushStatus:
    return PushStatus(Backoff(jitter=0.0))


def test_connect_fail_retry_recover() -> None:
    s = machine()
    assert s.snapshot().state is PushState.IDLE
    s.connecting()
    assert s.snapshot().state is PushState.CONNECTING and s.reconnects == 0
    s.active(now=1000.0)
    snap = s.snapshot(live_bytes=500, live_dropped=3)
    assert (snap.state, snap.connected_at, snap.bytes_sent, snap.dropped_frames) == (
        PushState.ACTIVE,
        1000.0,
        500,
        3,
    )
    s.connection_done(bytes_sent=800, dropped_frames=4)
    delay, new_outage = s.failed(now=1010.0, error="connection lost")
    assert (delay, new_outage) == (1.0, True)
    snap = s.snapshot()
    assert snap.state is PushState.ERROR and snap.last_error == "connection lost"
    assert snap.next_retry_at == 1011.0 and snap.connected_at is None
    assert (snap.bytes_sent, snap.dropped_frames) == (800, 4)
    # the retries of one outage: growing delays, one outage reported
    delays = []
    for now in (1011.0, 1013.0, 1017.0):
        s.connecting()
        delay, new_outage = s.failed(now, "refused")
        delays.append(delay)
        assert not new_outage
    assert delays == [2.0, 4.0, 8.0] and s.reconnects == 3
    s.connecting()
    s.active(now=1030.0)
    snap = s.snapshot()
    assert snap.state is PushState.ACTIVE and snap.reconnects == 4
    assert snap.last_error == "refused" and snap.next_retry_at is None
    # a failure after recovering is a new outage
    assert s.failed(1031.0, "again")[1] is True


def test_a_changed_destination_retries_at_once_and_counts_as_new() -> None:
    s = machine()
    for now in range(4):
        s.connecting()
        s.failed(float(now), "down")
    s.changed()
    s.connecting()
    delay, new_outage = s.failed(10.0, "still down")
    assert (delay, new_outage) == (1.0, True)


def test_finished_is_idle_with_totals_kept() -> None:
    s = machine()
    s.connecting()
    s.active(5.0)
    s.connection_done(1234, 0)
    s.finished()
    snap = s.snapshot()
    assert snap.state is PushState.IDLE and snap.bytes_sent == 1234 and snap.connected_at is None
