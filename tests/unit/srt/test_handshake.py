"""Caller <-> listener handshakes in memory: negotiation, encryption, every
rejection path, duplicate conclusions, stateless inductions, timeouts."""

from __future__ import annotations

import random

import pytest

from server.protocols.srt import (
    ConnectionEstablished,
    ConnectionFailed,
    ConnectionRequest,
    HandshakeRejected,
    LocalProtocolError,
    RejectCode,
    Rejected,
    SrtConnection,
    SrtLimits,
    SrtListener,
)
from server.protocols.srt.crypto import SendKeys
from server.protocols.srt.handshake import (
    HS_MAGIC,
    OUR_SRT_FLAGS,
    ExtFlag,
    ExtType,
    Handshake,
    HandshakeType,
    SrtFlag,
    SrtHandshakeExt,
    encode_string_ext,
    parse_handshake_packet,
    parse_srt_hs_ext,
)

from .helpers import ADDR, Link, Sim, accept_with, seeded

# Against the compiled modules and their pure-Python twins (tests/accel_twins.py).
pytestmark = pytest.mark.usefixtures("implementation")

PASS = "supersecret123"
SID = "#!::r=live/test,m=publish"


def connect(
    *,
    caller_pass: str | None = None,
    listener_pass: str | None = None,
    pbkeylen: int = 16,
    caller_latency: int | None = None,
    listener_limits: SrtLimits | None = None,
    decide=None,
) -> Sim:
    caller = SrtConnection.caller(
        0.0,
        streamid=SID,
        passphrase=caller_pass,
        pbkeylen=pbkeylen,
        latency_ms=caller_latency,
        random_bytes=seeded(1),
    )
    listener = SrtListener(listener_limits, 0.0, random_bytes=seeded(2))
    sim = Sim(caller, listener, decide=decide or accept_with(listener_pass))
    sim.run(1.0)
    return sim


def test_plain_handshake() -> None:
    sim = connect()
    [req] = [e for e in sim.listener_events if isinstance(e, ConnectionRequest)]
    assert req.streamid == SID and req.addr == ADDR and not req.encrypted
    assert req.peer_version == (1, 5, 1) and req.latency_ms == 120
    [up] = sim.caller_of(ConnectionEstablished)
    [down] = sim.server_of(ConnectionEstablished)
    assert up.peer_socket_id == down.socket_id and down.peer_socket_id == up.socket_id
    assert up.streamid == down.streamid == SID
    assert not up.encrypted and up.key_length == 0 and up.latency_ms == 120
    assert sim.listener.stats().connections == 1


@pytest.mark.parametrize("pbkeylen", [16, 24, 32])
def test_encrypted_handshake(pbkeylen: int) -> None:
    sim = connect(caller_pass=PASS, listener_pass=PASS, pbkeylen=pbkeylen)
    [req] = [e for e in sim.listener_events if isinstance(e, ConnectionRequest)]
    assert req.encrypted and req.key_length == pbkeylen
    [up] = sim.caller_of(ConnectionEstablished)
    [down] = sim.server_of(ConnectionEstablished)
    assert up.encrypted and down.encrypted
    assert up.key_length == down.key_length == pbkeylen
    assert sim.server.stats().encrypted


@pytest.mark.parametrize(
    ("caller_pass", "listener_pass", "code"),
    [
        ("supersecret123", "anotherpass99", RejectCode.BADSECRET),
        ("supersecret123", None, RejectCode.UNSECURE),
        (None, "supersecret123", RejectCode.UNSECURE),
    ],
)
def test_passphrase_rejections(
    caller_pass: str | None, listener_pass: str | None, code: int
) -> None:
    sim = connect(caller_pass=caller_pass, listener_pass=listener_pass)
    assert sim.caller_of(Rejected) == [Rejected(code, f"{RejectCode(code).name} ({code})")]
    assert sim.caller.closed and sim.server is None
    [rej] = [e for e in sim.listener_events if isinstance(e, HandshakeRejected)]
    assert rej.code == code and rej.streamid == SID


def test_application_rejection_2403() -> None:
    def refuse(lst: SrtListener, req: ConnectionRequest, now: float) -> None:
        lst.reject(req, RejectCode.FORBIDDEN, now)

    sim = connect(decide=refuse)
    [rej] = sim.caller_of(Rejected)
    assert rej.code == 2403 and "FORBIDDEN" in rej.reason
    # the application's own decision is not reported back as HandshakeRejected
    assert not [e for e in sim.listener_events if isinstance(e, HandshakeRejected)]
    assert sim.listener.stats().cached_responses == 1


@pytest.mark.parametrize(
    ("caller_latency", "listener_latency", "expected"),
    [(200, 120, 200), (80, 300, 300), (120, 120, 120)],
)
def test_latency_is_max_of_both(caller_latency: int, listener_latency: int, expected: int) -> None:
    sim = connect(
        caller_latency=caller_latency, listener_limits=SrtLimits(latency_ms=listener_latency)
    )
    [up] = sim.caller_of(ConnectionEstablished)
    [down] = sim.server_of(ConnectionEstablished)
    assert up.latency_ms == up.peer_latency_ms == expected
    assert down.latency_ms == down.peer_latency_ms == expected


def test_latency_override_at_accept() -> None:
    sim = connect(decide=accept_with(None, latency_ms=400))
    [down] = sim.server_of(ConnectionEstablished)
    assert down.latency_ms == 400
    assert sim.caller_of(ConnectionEstablished)[0].peer_latency_ms == 400


def test_deferred_decision_absorbs_repeated_conclusions() -> None:
    held: list[ConnectionRequest] = []

    def later(lst: SrtListener, req: ConnectionRequest, now: float) -> None:
        held.append(req)

    sim = connect(decide=later)  # 1 s of conclusions re-sent every 250 ms
    assert len(held) == 1 and sim.listener.stats().pending == 1
    conn = sim.listener.accept(held[0], sim.now)
    assert conn is not None
    sim.server = conn
    sim.run(sim.now + 0.5)
    assert sim.caller_of(ConnectionEstablished)
    assert sim.listener.accept(held[0], sim.now) is None  # no longer pending


# ---------------------------------------------------------------- raw handshakes


class RawCaller:
    """Hand-made handshakes against a listener (for what our caller never sends)."""

    def __init__(self, listener: SrtListener, addr=ADDR, socket_id: int = 0x1234) -> None:
        self.listener = listener
        self.addr = addr
        self.socket_id = socket_id

    def send(self, hs: Handshake, now: float = 0.0) -> list[Handshake]:
        assert self.listener.receive(hs.encode(0, 0), self.addr, now) is None
        out = []
        for datagram, addr in self.listener.datagrams_to_send():
            assert addr == self.addr
            _ts, dst, answer = parse_handshake_packet(datagram)
            assert dst == self.socket_id
            out.append(answer)
        return out

    def induction(self, now: float = 0.0) -> Handshake:
        req = Handshake(4, 0, 2, 1000, 1500, 8192, HandshakeType.INDUCTION, self.socket_id, 0)
        [answer] = self.send(req, now)
        return answer

    def conclusion(
        self,
        cookie: int,
        *,
        flags: int = OUR_SRT_FLAGS,
        extra: tuple[tuple[int, bytes], ...] = (),
        version: int = 5,
        hsreq_version: int = 0x010501,
    ) -> Handshake:
        hsreq = SrtHandshakeExt(hsreq_version, flags, 120, 120).encode()
        exts = ((ExtType.HSREQ, hsreq), (ExtType.SID, encode_string_ext(SID)), *extra)
        return Handshake(
            version,
            0,
            int(ExtFlag.HSREQ | ExtFlag.CONFIG),
            1000,
            1500,
            8192,
            HandshakeType.CONCLUSION,
            self.socket_id,
            cookie,
            extensions=exts,
        )


def test_induction_is_stateless_and_answered_with_a_cookie() -> None:
    listener = SrtListener(now=100.0, secret=b"s" * 32)
    for port in range(200):
        raw = RawCaller(listener, ("198.51.100.7", port), socket_id=port + 1)
        answer = raw.induction(100.0)
        assert answer.version == 5 and answer.extension == HS_MAGIC
        assert answer.hs_type == HandshakeType.INDUCTION and answer.cookie
        assert answer.socket_id == port + 1 and answer.isn == 1000
    stats = listener.stats()
    assert (stats.inductions, stats.pending, stats.cached_responses, stats.connections) == (
        200,
        0,
        0,
        0,
    )
    assert listener.next_timer() is None and not listener.events()
    assert not listener._pending and not listener._responses and not listener._by_peer


def test_conclusion_needs_a_current_cookie() -> None:
    listener = SrtListener(now=0.0)
    raw = RawCaller(listener)
    cookie = raw.induction(10.0).cookie
    assert raw.send(raw.conclusion(cookie ^ 1), 10.0) == []  # wrong cookie: ignored
    assert listener.stats().bad_cookies == 1
    assert raw.send(raw.conclusion(cookie), 190.0) == []  # three minutes later: expired
    assert raw.send(raw.conclusion(cookie), 70.0) == []  # previous minute still valid...
    [req] = listener.events()
    assert isinstance(req, ConnectionRequest)


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"version": 4}, RejectCode.VERSION),
        ({"hsreq_version": 0x010203}, RejectCode.VERSION),
        ({"flags": OUR_SRT_FLAGS | SrtFlag.STREAM}, RejectCode.MESSAGEAPI),
        ({"extra": ((ExtType.CONGESTION, encode_string_ext("file")),)}, RejectCode.CONGESTION),
        (
            {"extra": ((ExtType.FILTER, encode_string_ext("fec,cols:10,rows:5")),)},
            RejectCode.FILTER,
        ),
        ({"extra": ((ExtType.GROUP, bytes(8)),)}, RejectCode.GROUP),
        ({"extra": ((ExtType.KMREQ, bytes(12)),)}, RejectCode.CRYPTO),
    ],
)
def test_protocol_rejections(kwargs: dict, code: int) -> None:
    listener = SrtListener(now=0.0)
    raw = RawCaller(listener)
    cookie = raw.induction().cookie
    [answer] = raw.send(raw.conclusion(cookie, **kwargs))
    assert answer.hs_type == code and answer.extensions == ()
    [event] = listener.events()
    assert isinstance(event, HandshakeRejected) and event.code == code
    # a repeated conclusion gets the identical cached rejection, no new event
    assert raw.send(raw.conclusion(cookie, **kwargs)) == [answer]
    assert listener.events() == [] and listener.stats().rejected == 1


def test_gcm_key_material_rejected_as_crypto() -> None:
    listener = SrtListener(now=0.0)
    raw = RawCaller(listener)
    cookie = raw.induction().cookie
    km = bytearray(SendKeys.create(PASS.encode(), 16, seeded(3)).km)
    km[8] = 4  # AES-GCM
    [answer] = raw.send(raw.conclusion(cookie, extra=((ExtType.KMREQ, bytes(km)),)))
    assert answer.hs_type == RejectCode.CRYPTO


def test_duplicate_conclusion_answered_from_cache() -> None:
    listener = SrtListener(now=0.0)
    raw = RawCaller(listener)
    cookie = raw.induction().cookie
    conclusion = raw.conclusion(cookie)
    assert raw.send(conclusion) == []
    [req] = listener.events()
    assert raw.send(conclusion) == []  # still pending: absorbed, no second request
    assert listener.events() == []
    conn = listener.accept(req, 0.1)
    assert conn is not None
    [first] = conn.datagrams_to_send()
    _ts, dst, answer = parse_handshake_packet(first)
    assert dst == raw.socket_id and answer.hs_type == HandshakeType.CONCLUSION
    assert answer.socket_id == conn.socket_id and answer.cookie == cookie
    hsrsp = parse_srt_hs_ext(answer.extension_map()[ExtType.HSRSP])
    assert hsrsp.flags == OUR_SRT_FLAGS and hsrsp.version == 0x010501
    assert answer.extension == ExtFlag.HSREQ
    for _ in range(3):  # the first answer was "lost": each repeat gets the same bytes
        assert listener.receive(conclusion.encode(0, 0), ADDR, 0.3) is None
        assert listener.datagrams_to_send() == [(first, ADDR)]
    assert listener.stats().connections == 1 and listener.events() == []


def test_pending_requests_are_bounded_and_expire() -> None:
    limits = SrtLimits(max_pending_handshakes=2, pending_timeout=2.0)
    listener = SrtListener(limits, 0.0)
    raws = [RawCaller(listener, ("203.0.113.1", 5000 + i), socket_id=i + 1) for i in range(3)]
    answers = [raw.send(raw.conclusion(raw.induction().cookie)) for raw in raws]
    assert answers[:2] == [[], []]
    assert answers[2][0].hs_type == RejectCode.BACKLOG
    assert listener.stats().pending == 2
    assert listener.next_timer() == 2.0
    listener.handle_timer(2.0)
    timed_out = [e for e in listener.events() if isinstance(e, HandshakeRejected)]
    assert [e.code for e in timed_out] == [
        RejectCode.BACKLOG,
        RejectCode.TIMEOUT,
        RejectCode.TIMEOUT,
    ]
    assert listener.stats().pending == 0
    listener.handle_timer(100.0)
    assert listener.stats().cached_responses == 0 and listener.next_timer() is None


def test_caller_resends_and_times_out() -> None:
    caller = SrtConnection.caller(0.0, random_bytes=seeded(4))
    sent = len(caller.datagrams_to_send())
    now = 0.0
    while not caller.closed:
        now = caller.next_timer()
        assert now is not None
        caller.handle_timer(now)
        sent += len(caller.datagrams_to_send())
    assert sent == 12  # every 250 ms for 3 s
    assert caller.events() == [ConnectionFailed("connect timeout: no answer from the listener")]
    assert now == pytest.approx(3.0)


def test_caller_refuses_non_hsv5_listener() -> None:
    caller = SrtConnection.caller(0.0, random_bytes=seeded(5))
    [induction] = caller.datagrams_to_send()
    _ts, _dst, req = parse_handshake_packet(induction)
    assert req.version == 4 and req.extension == 2 and req.cookie == 0
    answer = Handshake(4, 0, 0, req.isn, 1500, 8192, HandshakeType.INDUCTION, req.socket_id, 77)
    caller.receive(answer.encode(0, req.socket_id), 0.01)
    [failed] = caller.events()
    assert isinstance(failed, ConnectionFailed) and "HSv5" in failed.reason


def test_caller_conclusion_carries_swapped_sid_and_hsreq() -> None:
    caller = SrtConnection.caller(0.0, streamid=SID, passphrase=PASS, random_bytes=seeded(6))
    [induction] = caller.datagrams_to_send()
    _ts, _dst, req = parse_handshake_packet(induction)
    answer = Handshake(
        5, 0, HS_MAGIC, req.isn, 1500, 8192, HandshakeType.INDUCTION, req.socket_id, 99
    )
    caller.receive(answer.encode(0, req.socket_id), 0.01)
    [conclusion] = caller.datagrams_to_send()
    assert bytes.fromhex("3a3a2123696c3d72742f65762c74736575703d6d73696c6200000068") in conclusion
    _ts, dst, hs = parse_handshake_packet(conclusion)
    assert dst == 0 and hs.cookie == 99 and hs.version == 5 and hs.encryption == 2
    assert hs.extension == ExtFlag.HSREQ | ExtFlag.KMREQ | ExtFlag.CONFIG
    hsreq = parse_srt_hs_ext(hs.extension_map()[ExtType.HSREQ])
    assert (hsreq.version, hsreq.flags, hsreq.recv_latency_ms, hsreq.send_latency_ms) == (
        0x010501,
        0x3F,
        120,
        120,
    )


def test_caller_fails_on_kmrsp_mismatch() -> None:
    caller = SrtConnection.caller(0.0, passphrase=PASS, random_bytes=seeded(6))
    _ts, _dst, req = parse_handshake_packet(caller.datagrams_to_send()[0])
    induction = Handshake(5, 0, HS_MAGIC, req.isn, 1500, 8192, 1, req.socket_id, 5)
    caller.receive(induction.encode(0, req.socket_id), 0.01)
    caller.datagrams_to_send()
    hsrsp = SrtHandshakeExt(0x010501, 0x3F, 120, 120).encode()
    bad = Handshake(
        5,
        2,
        3,
        req.isn,
        1500,
        8192,
        HandshakeType.CONCLUSION,
        0x777,
        5,
        extensions=((ExtType.HSRSP, hsrsp), (ExtType.KMRSP, (4).to_bytes(4, "big"))),
    )
    caller.receive(bad.encode(0, req.socket_id), 0.02)
    [failed] = caller.events()
    assert isinstance(failed, ConnectionFailed) and "bad passphrase" in failed.reason


def test_send_before_established_is_local_error() -> None:
    caller = SrtConnection.caller(0.0, random_bytes=seeded(7))
    with pytest.raises(LocalProtocolError):
        caller.send(b"x", 0.0)
    caller.close()
    caller.send(b"x", 0.1)  # closed: ignored
    assert caller.datagrams_to_send() != []  # only the induction


def test_misuse_raises_value_error() -> None:
    with pytest.raises(ValueError):
        SrtConnection.caller(0.0, passphrase="short")
    with pytest.raises(ValueError):
        SrtConnection.caller(0.0, pbkeylen=20)
    listener = SrtListener(now=0.0)
    req = ConnectionRequest(ADDR, "", 1, False, 0, 120, (1, 5, 1), 1)
    with pytest.raises(ValueError):
        listener.reject(req, 403, 0.0)
    assert listener.accept(req, 0.0) is None  # never pending


def test_data_from_another_address_is_not_routed() -> None:
    sim = connect()
    conn = sim.server
    stranger = ("192.0.2.99", 1)
    datagram = bytes(12) + conn.socket_id.to_bytes(4, "big")
    assert sim.listener.receive(datagram, stranger, sim.now) is None
    assert sim.listener.stats().unknown_destination == 1


def test_lossy_handshake_still_connects() -> None:
    caller = SrtConnection.caller(0.0, streamid=SID, passphrase=PASS, random_bytes=seeded(8))
    listener = SrtListener(now=0.0, random_bytes=seeded(9))
    up = Link(random.Random(3), loss=0.5)
    down = Link(random.Random(4), loss=0.5)
    sim = Sim(caller, listener, decide=accept_with(PASS), up=up, down=down)
    sim.run(3.0)
    assert sim.caller_of(ConnectionEstablished) and sim.server_of(ConnectionEstablished)
    assert len([e for e in sim.listener_events if isinstance(e, ConnectionRequest)]) == 1


def test_caller_adopts_advertised_key_length() -> None:
    caller = SrtConnection.caller(0.0, passphrase=PASS, pbkeylen=0, random_bytes=seeded(10))
    listener = SrtListener(SrtLimits(advertised_key_length=32), 0.0, random_bytes=seeded(11))
    sim = Sim(caller, listener, decide=accept_with(PASS))
    sim.run(1.0)
    [up] = sim.caller_of(ConnectionEstablished)
    assert up.key_length == 32


def test_garbage_during_connect_is_dropped_not_fatal() -> None:
    caller = SrtConnection.caller(0.0, random_bytes=seeded(12))
    _ts, _dst, req = parse_handshake_packet(caller.datagrams_to_send()[0])
    garbage = bytes.fromhex("80000000 00000000 00000000") + req.socket_id.to_bytes(4, "big")
    caller.receive(garbage + bytes(10), 0.01)  # a handshake too short to read
    assert caller.events() == [] and not caller.closed
    assert caller.stats().malformed == 1
