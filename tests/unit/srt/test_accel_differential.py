"""Differential fuzzing: the compiled SRT datagram path (listener, connection, live
receiver and sender) against its pure-Python source.

One connection of each implementation gets the same script, step by step at the same
fake clock: data packets around the expected sequence numbers (in order, reordered,
duplicated, retransmitted, too old, far ahead, encrypted with the right, an unknown
or no key), the peer's control packets (ACK, NAK, ACKACK, DROPREQ, keepalive,
shutdown, garbage), payloads of our own to send, timers when due, delivery into a
sink or as events. After every step both must have said the same: events, datagrams,
the next timer, whether closed; at the end, the same statistics. A listener pair gets
the same handshakes and garbage. Any exception fails the test.
"""

from __future__ import annotations

import dataclasses
import random
import struct
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import accel
from server.protocols.srt import SrtLimits
from server.protocols.srt import connection as default_connection
from server.protocols.srt import listener as default_listener
from server.protocols.srt import receiver as default_receiver
from server.protocols.srt import sender as default_sender
from server.protocols.srt.control import (
    Ack,
    ack_packet,
    ackack_packet,
    dropreq_packet,
    keepalive_packet,
    nak_packet,
    shutdown_packet,
)
from server.protocols.srt.crypto import ReceiveKeys, SendKeys, parse_key_material
from server.protocols.srt.packet import DataPacket, KeyIndex
from tests.accel_twins import pure_twins

from .helpers import ADDR, seeded

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SOCK = 0x2000
PEER = 0x1000
PASS = b"correct horse battery"


@pytest.fixture(scope="module")
def pure() -> dict[str, ModuleType]:
    if not accel.is_compiled(default_connection):
        pytest.skip("no compiled build to compare with (pip install -e . with a compiler)")
    return pure_twins()


def _keys(encrypted: bool) -> tuple[ReceiveKeys | None, SendKeys | None]:
    """Fresh, identical key state for each twin (the keys are mutable)."""
    if not encrypted:
        return None, None
    send = SendKeys.create(PASS, 16, seeded(7))
    receive = ReceiveKeys(PASS)
    receive.install(parse_key_material(send.km))
    return receive, send


def _script(seed: int, steps: int, isn: int, encrypted: bool) -> list[tuple[float, str, Any]]:
    """(time, action, argument): the same for both twins."""
    rng = random.Random(seed)
    _, send = _keys(encrypted)
    now = 0.0
    seq = isn
    script: list[tuple[float, str, Any]] = []
    for _ in range(steps):
        now += rng.choice((0.0, 0.0005, 0.002, 0.002, 0.011, 0.05, rng.random() * 0.3))
        ts = (int(now * 1e6) + rng.randrange(-3000, 3000)) & 0xFFFFFFFF
        roll = rng.random()
        if roll < 0.55:
            offset = rng.choice((0,) * 12 + (1, 2, 5, -1, -3))
            if rng.random() < 0.02:  # far ahead (a flow-window breach), or far behind
                offset = rng.choice((40, 300, 600, -(2**30)))
            s = (seq + offset) & 0x7FFFFFFF
            if 0 <= offset <= 600:  # the sender moved on (a gap, if it jumped)
                seq = s + 1
            payload = rng.randbytes(rng.choice((0, 1, 188, 1316)))
            key = KeyIndex.CLEAR
            if send is not None and rng.random() < 0.9:
                key = rng.choice((KeyIndex.EVEN, KeyIndex.EVEN, KeyIndex.ODD))
                even = send.ciphers[1]
                assert even is not None
                payload = even.crypt(s, payload) if key is KeyIndex.EVEN else payload
            packet = DataPacket(s, 1, ts, SOCK, payload, key=key, retransmitted=rng.random() < 0.2)
            script.append((now, "receive", packet.encode()))
        elif roll < 0.62:
            script.append((now, "send", rng.randbytes(rng.choice((1, 100, 1316)))))
        elif roll < 0.67:
            ack = Ack(
                (isn + rng.randrange(0, 40)) & 0x7FFFFFFF, 20_000, 5_000, 8192, 400, 800, 500_000
            )
            number = rng.choice((0, rng.randrange(1, 50)))
            script.append((now, "receive", ack_packet(number, ack, ts, SOCK)))
        elif roll < 0.71:
            first = (isn + rng.randrange(0, 30)) & 0x7FFFFFFF
            ranges = [(first, (first + rng.randrange(0, 4)) & 0x7FFFFFFF)]
            script.append((now, "receive", nak_packet(ranges, ts, SOCK, 1400)))
        elif roll < 0.78:
            number = rng.randrange(1, 12)
            script.append((now, "receive", ackack_packet(number, ts, SOCK)))
        elif roll < 0.82:
            first = (seq + rng.randrange(-5, 20)) & 0x7FFFFFFF
            last = (first + rng.randrange(0, 10)) & 0x7FFFFFFF
            script.append((now, "receive", dropreq_packet(1, first, last, ts, SOCK)))
        elif roll < 0.84:
            script.append((now, "receive", keepalive_packet(ts, SOCK)))
        elif roll < 0.841:
            script.append((now, "receive", shutdown_packet(ts, SOCK)))
        elif roll < 0.87:
            head = struct.pack(">IIII", rng.getrandbits(32), rng.getrandbits(32), ts, SOCK)
            script.append((now, "receive", head + rng.randbytes(rng.randrange(0, 40))))
        elif roll < 0.90:
            script.append((now, "sink", None))
        else:
            script.append((now, "timer", None))
    return script


def _play(module: ModuleType, script: list[tuple[float, str, Any]], **kw: Any) -> list[Any]:
    receive_keys, _ = _keys(kw.pop("encrypted"))
    conn = module.SrtConnection.accepted(
        0.0,
        socket_id=SOCK,
        peer_addr=ADDR,
        peer_socket_id=PEER,
        isn=kw.pop("isn"),
        streamid="",
        latency_ms=120,
        peer_latency_ms=120,
        receive_keys=receive_keys,
        limits=SrtLimits(**kw),
        handshake_response=b"hs",
    )
    sink: list[bytes | None] = []
    seen: list[Any] = []
    for now, action, argument in script:
        if action == "receive":
            conn.receive(argument, now)
        elif action == "send":
            if not conn.closed:
                conn.send(argument, now)
        elif action == "sink":
            conn.deliver_into(sink)
        else:
            timer = conn.next_timer()
            if timer is not None and timer <= now:
                conn.handle_timer(now)
        seen.append((conn.events(), conn.datagrams_to_send(), conn.next_timer(), conn.closed))
    seen.append(list(sink))
    seen.append(dataclasses.astuple(conn.stats()))
    return seen


@FUZZ
@given(
    st.integers(0, 2**32),
    st.sampled_from([0, 1000, 0x7FFFFFF0]),
    st.booleans(),
    st.booleans(),
)
def test_connections_say_the_same(
    pure: dict[str, ModuleType], seed: int, isn: int, tsbpd: bool, encrypted: bool
) -> None:
    script = _script(seed, 150, isn, encrypted)
    kw = {"isn": isn, "encrypted": encrypted, "tsbpd_delivery": tsbpd, "flow_window": 512}
    expected = _play(pure["server.protocols.srt.connection"], script, **kw)
    assert _play(default_connection, script, **kw) == expected


def _listen(module: ModuleType, datagrams: list[bytes]) -> list[Any]:
    from server.protocols.srt import ConnectionRequest

    listener = module.SrtListener(now=0.0, random_bytes=seeded(1))
    seen: list[Any] = []
    for i, datagram in enumerate(datagrams):
        now = i * 0.01
        conn = listener.receive(datagram, ADDR, now)
        listener.handle_timer(now)
        events = listener.events()
        for event in events:
            if isinstance(event, ConnectionRequest):
                accepted = listener.accept(event, now)
                seen.append(accepted.datagrams_to_send())
        seen.append((conn is not None, events, listener.datagrams_to_send()))
        if conn is not None:  # what the connection made of it
            seen.append((conn.events(), conn.datagrams_to_send(), conn.next_timer()))
    return seen


def _handshakes(seed: int) -> list[bytes]:
    """A caller's induction and conclusion (answered by a throwaway listener), plus
    garbage and data for the connection once it exists."""
    from server.protocols.srt import ConnectionRequest, SrtConnection, SrtListener

    rng = random.Random(seed)
    caller = SrtConnection.caller(0.0, streamid="#!::r=live/k,m=publish", random_bytes=seeded(3))
    peer = SrtListener(now=0.0, random_bytes=seeded(1))
    out: list[bytes] = []
    answers: list[bytes] = []
    for step in range(3):
        sent = caller.datagrams_to_send()
        out += sent
        for datagram in sent:
            peer.receive(datagram, ADDR, step * 0.01)
        for event in peer.events():
            if isinstance(event, ConnectionRequest):
                accepted = peer.accept(event, step * 0.01)
                assert accepted is not None
                answers += accepted.datagrams_to_send()
        answers += [datagram for datagram, _ in peer.datagrams_to_send()]
        for datagram in answers:
            caller.receive(datagram, step * 0.01)
        answers.clear()
    assert caller.established
    for k in range(rng.randrange(1, 40)):  # data the accepted connection receives
        caller.send(rng.randbytes(rng.choice((1, 188, 1316))), 0.03 + k * 0.002)
        out += caller.datagrams_to_send()
    for _ in range(rng.randrange(0, 20)):
        out.insert(rng.randrange(len(out) + 1), rng.randbytes(rng.randrange(0, 80)))
    return out


@FUZZ
@given(st.integers(0, 2**32))
def test_listeners_say_the_same(pure: dict[str, ModuleType], seed: int) -> None:
    datagrams = _handshakes(seed)
    expected = _listen(pure["server.protocols.srt.listener"], datagrams)
    assert _listen(default_listener, datagrams) == expected


def test_the_compiled_modules_are_the_ones_compared(pure: dict[str, ModuleType]) -> None:
    for module in (default_connection, default_listener, default_receiver, default_sender):
        assert accel.is_compiled(module), module.__name__
        assert not accel.is_compiled(pure[module.__name__])
