"""Batch delivery (``deliver_into``): payloads appended to the adapter's list, in
order, with a None where packets were given up, and no object per packet."""

from __future__ import annotations

import pytest

from server.protocols.srt import LocalProtocolError, PacketsDropped, SrtConnection

from .test_receiver import data, make

# Against the compiled modules and their pure-Python twins (tests/accel_twins.py).
pytestmark = pytest.mark.usefixtures("implementation")


def test_payloads_go_to_the_sink_in_order_without_events() -> None:
    conn = make(10, tsbpd=False)
    sink: list[bytes | None] = []
    conn.deliver_into(sink)
    conn.receive(data(10, 0, b"a"), 0.0)
    conn.receive(data(12, 2000, b"c"), 0.002)  # waits behind the hole at 11
    assert sink == [b"a"]
    assert conn.events() == []
    conn.receive(data(11, 1000, b"b", rexmit=True), 0.003)
    assert sink == [b"a", b"b", b"c"]
    assert conn.events() == []
    assert conn.stats().packets_delivered == 3


def test_a_given_up_hole_is_marked_in_place_and_reported() -> None:
    conn = make(10, tsbpd=True, latency=100)
    sink: list[bytes | None] = []
    conn.deliver_into(sink)
    conn.receive(data(10, 0, b"a"), 0.0)
    conn.receive(data(13, 3000, b"d"), 0.003)  # 11, 12 lost for good
    conn.handle_timer(0.1)
    assert sink == [b"a"]
    conn.handle_timer(0.103)
    assert sink == [b"a", None, b"d"]
    assert conn.events() == [PacketsDropped(11, 2, "too late")]


def test_has_output_says_when_draining_is_needed() -> None:
    conn = make(10, tsbpd=False)
    conn.deliver_into([])
    conn.receive(data(10, 0), 0.0)
    assert not conn.has_output  # a payload only: nothing to send, no event
    conn.receive(data(12, 2000), 0.002)  # a gap: an immediate NAK is queued
    assert conn.has_output
    conn.datagrams_to_send()
    assert not conn.has_output
    conn.close()
    assert conn.has_output  # the SHUTDOWN, and the connection is closed


def test_only_once_established() -> None:
    caller = SrtConnection.caller(0.0, streamid="x")
    with pytest.raises(LocalProtocolError):
        caller.deliver_into([])
