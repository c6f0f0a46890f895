"""SrtConnection: one SRT live connection, either role, after (and for the caller,
during) the handshake. Sans-IO: datagrams and ``now`` in, events and datagrams out.

It composes a :class:`~.receiver.LiveReceiver` and a :class:`~.sender.LiveSender`
(each direction of SRT is independent; an ingest connection only uses the
receiver, a push only the sender), dispatches control packets between them, and
owns the connection-wide timers: keepalive after 1 s of silence, peer idle
timeout, the caller's handshake re-sends and connect timeout.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum

from .caller import CallerHandshake, CallerResult, Step
from .control import keepalive_packet, km_packet, shutdown_packet
from .crypto import KM_STATE_NOSECRET, RandomBytes, ReceiveKeys, SendKeys, check_passphrase
from .errors import LocalProtocolError, ProtocolError
from .events import (
    Address,
    ConnectionClosed,
    ConnectionEstablished,
    ConnectionFailed,
    Event,
    Rejected,
)
from .handshake import describe_rejection, encode_peer_ip, parse_handshake_cif
from .limits import SrtLimits
from .link import NEVER, Rtt
from .packet import HEADER, HEADER_SIZE, ControlType, ExtendedType
from .receiver import LiveReceiver
from .sender import LiveSender
from .seqno import SEQ_MASK, TS_MASK

_KEEPALIVE = int(ControlType.KEEPALIVE)
_ACK = int(ControlType.ACK)
_NAK = int(ControlType.NAK)
_SHUTDOWN = int(ControlType.SHUTDOWN)
_ACKACK = int(ControlType.ACKACK)
_DROPREQ = int(ControlType.DROPREQ)
_HANDSHAKE = int(ControlType.HANDSHAKE)
_USER = int(ControlType.USER_DEFINED)


class Role(Enum):
    CALLER = "caller"
    LISTENER = "listener"


class State(Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class SrtStats:
    """A snapshot for logs, metrics and the API. Times in milliseconds.

    Receiving: ``packets_received`` counts every data packet that arrived,
    ``packets_lost`` sequence numbers detected missing, ``packets_retransmitted_received``
    arrivals with the R flag, ``packets_dropped`` never delivered (too late or
    given up by the sender), ``packets_discarded`` duplicates / arrivals after their
    slot was skipped, ``packets_undecryptable`` packets for a key we do not have.
    Sending: ``packets_sent`` first transmissions, ``packets_retransmitted``,
    ``packets_send_dropped`` dropped unacknowledged by age.
    """

    rtt_ms: float
    rtt_var_ms: float
    latency_ms: int
    peer_latency_ms: int
    encrypted: bool
    key_length: int
    packets_received: int
    bytes_received: int
    packets_delivered: int
    packets_lost: int
    packets_retransmitted_received: int
    packets_dropped: int
    packets_discarded: int
    packets_undecryptable: int
    packets_sent: int
    bytes_sent: int
    packets_retransmitted: int
    packets_send_dropped: int
    send_buffer: int
    receive_buffer: int
    malformed: int
    key_refreshes_received: int


_CLOSED = State.CLOSED
_CONNECTED = State.CONNECTED


def _to_us(now: float) -> int:
    return int(now * 1_000_000 + 0.5)


class SrtConnection:
    """One connection. Create callers with :meth:`caller`; listener-side connections
    come from :meth:`SrtListener.accept`. Never raises for peer input."""

    def __init__(
        self,
        *,
        role: Role,
        socket_id: int,
        now: float,
        limits: SrtLimits | None = None,
        peer_addr: Address | None = None,
        timestamp_origin_us: int = 0,
    ) -> None:
        now_us = _to_us(now)
        self.role = role
        self.socket_id = socket_id
        self.peer_socket_id = 0
        self.peer_addr = peer_addr
        self.limits = limits if limits is not None else SrtLimits()
        self.streamid = ""
        self.state = State.CONNECTING
        self.latency_ms = 0
        self.peer_latency_ms = 0
        self.key_length = 0
        self.handshake_response = b""
        self._start_us = now_us - timestamp_origin_us
        self._out: list[bytes] = []
        self._events: list[Event] = []
        self._last_rx_us = now_us
        self._last_tx_us = now_us
        self._keepalive_us = int(self.limits.keepalive_interval * 1e6)
        self._idle_us = int(self.limits.peer_idle_timeout * 1e6)
        self._rtt = Rtt()
        self._rx: LiveReceiver | None = None
        self._tx: LiveSender | None = None
        self._handshake: CallerHandshake | None = None
        self._hs_next_us = NEVER
        self._connect_deadline_us = NEVER
        self._malformed = 0
        self._km_refreshes = 0

    # ------------------------------------------------------------------ creation

    @classmethod
    def caller(
        cls,
        now: float,
        *,
        streamid: str = "",
        passphrase: str | None = None,
        pbkeylen: int = 16,
        latency_ms: int | None = None,
        limits: SrtLimits | None = None,
        peer_ip: str | None = None,
        socket_id: int | None = None,
        isn: int | None = None,
        timestamp_origin_us: int = 0,
        random_bytes: RandomBytes = os.urandom,
    ) -> SrtConnection:
        """A caller (push) connection; its induction request is queued at once.

        ``pbkeylen`` in bytes (16/24/32; 0 = take the listener's advertised length
        or 16); ``latency_ms`` overrides ``limits.latency_ms`` for both directions;
        ``peer_ip`` only fills the informational peer-address field.
        ``socket_id``/``isn``/``timestamp_origin_us``/``random_bytes`` exist for
        deterministic tests (the origin starts our timestamps near a wrap).
        """
        limits = limits if limits is not None else SrtLimits()
        if pbkeylen not in (0, 16, 24, 32):
            raise ValueError("pbkeylen must be 0, 16, 24 or 32")
        secret = check_passphrase(passphrase)
        if len(streamid.encode("utf-8")) > limits.max_streamid_bytes:
            raise ValueError("streamid too long")
        if socket_id is None:
            socket_id = (int.from_bytes(random_bytes(4), "big") & 0x3FFFFFFF) or 1
        if isn is None:
            isn = int.from_bytes(random_bytes(4), "big") & SEQ_MASK
        latency = limits.latency_ms if latency_ms is None else latency_ms
        peer_latency = limits.effective_peer_latency_ms if latency_ms is None else latency_ms
        conn = cls(
            role=Role.CALLER,
            socket_id=socket_id,
            now=now,
            limits=limits,
            timestamp_origin_us=timestamp_origin_us,
        )
        conn.streamid = streamid
        conn._handshake = CallerHandshake(
            socket_id=socket_id,
            isn=isn,
            limits=limits,
            streamid=streamid,
            passphrase=secret,
            pbkeylen=pbkeylen,
            latency_ms=latency,
            peer_latency_ms=peer_latency,
            peer_ip=encode_peer_ip(peer_ip) if peer_ip else bytes(16),
            random_bytes=random_bytes,
        )
        now_us = _to_us(now)
        conn._connect_deadline_us = now_us + int(limits.connect_timeout * 1e6)
        conn._send_handshake(now_us)
        return conn

    @classmethod
    def accepted(
        cls,
        now: float,
        *,
        socket_id: int,
        peer_addr: Address,
        peer_socket_id: int,
        isn: int,
        streamid: str,
        latency_ms: int,
        peer_latency_ms: int,
        receive_keys: ReceiveKeys | None,
        limits: SrtLimits,
        handshake_response: bytes,
    ) -> SrtConnection:
        """Listener side, used by :meth:`SrtListener.accept`: the handshake is done and
        ``handshake_response`` (the conclusion answer) is the first datagram out."""
        conn = cls(role=Role.LISTENER, socket_id=socket_id, now=now, limits=limits)
        conn.peer_addr = peer_addr
        conn.streamid = streamid
        conn.handshake_response = handshake_response
        now_us = _to_us(now)
        conn.queue(handshake_response, now_us)
        conn._establish(
            peer_socket_id=peer_socket_id,
            isn=isn,
            latency_ms=latency_ms,
            peer_latency_ms=peer_latency_ms,
            receive_keys=receive_keys,
            send_keys=SendKeys.mirror(receive_keys) if receive_keys is not None else None,
            now_us=now_us,
        )
        return conn

    def _establish(
        self,
        *,
        peer_socket_id: int,
        isn: int,
        latency_ms: int,
        peer_latency_ms: int,
        receive_keys: ReceiveKeys | None,
        send_keys: SendKeys | None,
        now_us: int,
    ) -> None:
        """Handshake done (either role): build both halves, report the connection."""
        self.peer_socket_id = peer_socket_id
        self.latency_ms = latency_ms
        self.peer_latency_ms = peer_latency_ms
        self.key_length = receive_keys.key_length if receive_keys is not None else 0
        self._rx = LiveReceiver(
            self,
            self._rtt,
            self._events,
            isn=isn,
            latency_ms=latency_ms,
            limits=self.limits,
            keys=receive_keys,
            now_us=now_us,
        )
        self._tx = LiveSender(
            self,
            self._rtt,
            isn=isn,
            peer_latency_ms=peer_latency_ms,
            limits=self.limits,
            keys=send_keys,
            now_us=now_us,
        )
        self.state = State.CONNECTED
        self._last_rx_us = now_us
        self._handshake = None
        self._hs_next_us = self._connect_deadline_us = NEVER
        self._events.append(
            ConnectionEstablished(
                socket_id=self.socket_id,
                peer_socket_id=peer_socket_id,
                streamid=self.streamid,
                latency_ms=latency_ms,
                peer_latency_ms=peer_latency_ms,
                encrypted=self.key_length > 0,
                key_length=self.key_length,
            )
        )

    # ------------------------------------------------------------------ Link

    def stamp(self, now_us: int) -> int:
        return (now_us - self._start_us) & TS_MASK

    def queue(self, datagram: bytes, now_us: int) -> None:
        self._out.append(datagram)
        self._last_tx_us = now_us

    # ------------------------------------------------------------------ input

    def receive(self, datagram: bytes, now: float) -> None:
        """One datagram from the peer. Peer faults never raise: malformed datagrams
        are dropped and counted; a broken handshake fails the connection."""
        if self.state is _CLOSED:
            return
        if len(datagram) < HEADER_SIZE:
            self._malformed += 1
            return
        word0, word1, ts, dst = HEADER.unpack_from(datagram)
        if dst != self.socket_id:
            return
        now_us = int(now * 1_000_000 + 0.5)
        self._last_rx_us = now_us
        if word0 < 0x80000000:
            rx = self._rx
            if rx is not None:
                rx.on_data(datagram, word0, word1, ts, now_us)
            return
        try:
            self._on_control((word0 >> 16) & 0x7FFF, word0 & 0xFFFF, word1, datagram, now_us)
        except ProtocolError as exc:
            if self.state is State.CONNECTING:
                self._fail(f"handshake: {exc}")
            else:
                self._malformed += 1

    def _on_control(
        self, ctype: int, subtype: int, info: int, datagram: bytes, now_us: int
    ) -> None:
        rx, tx = self._rx, self._tx
        if ctype == _HANDSHAKE:
            if self._handshake is not None:
                self._on_handshake(datagram, now_us)
            return
        if rx is None or tx is None:
            return
        cif = datagram[HEADER_SIZE:]
        if ctype == _ACKACK:
            rx.on_ackack(info, now_us)
        elif ctype == _ACK:
            tx.on_ack(info, cif, now_us)
        elif ctype == _NAK:
            tx.on_nak(cif, now_us)
        elif ctype == _DROPREQ:
            rx.on_dropreq(cif, now_us)
        elif ctype == _SHUTDOWN:
            self.state = State.CLOSED
            self._events.append(ConnectionClosed("peer sent SHUTDOWN"))
        elif ctype == _USER:
            self._on_extended(subtype, cif, now_us)
        # KEEPALIVE, congestion warning, PEERERROR, unknown types: "last heard" only

    def _on_extended(self, subtype: int, cif: bytes, now_us: int) -> None:
        """0x7FFF: key refresh (KMREQ -> KMRSP), or the answer to ours."""
        assert self._rx is not None and self._tx is not None
        if subtype == ExtendedType.KMREQ:
            keys = self._rx.keys
            if keys is None:
                answer = KM_STATE_NOSECRET.to_bytes(4, "big")
            else:
                answer = keys.on_kmreq(cif)
                self._km_refreshes += len(answer) > 4
            packet = km_packet(ExtendedType.KMRSP, answer, self.stamp(now_us), self.peer_socket_id)
            self.queue(packet, now_us)
        elif subtype == ExtendedType.KMRSP:
            self._tx.on_kmrsp(cif)

    def _on_handshake(self, datagram: bytes, now_us: int) -> None:
        handshake = self._handshake
        assert handshake is not None
        try:
            answer = parse_handshake_cif(datagram[HEADER_SIZE:])
        except ProtocolError:  # unreadable: drop it, the next re-send may fare better
            self._malformed += 1
            return
        # a readable answer that breaks the rules fails the connection (ProtocolError)
        step = handshake.on_handshake(answer)
        if step is Step.SEND_CONCLUSION:
            self._send_handshake(now_us)
        elif step is Step.REJECTED:
            code = handshake.reject_code
            self.state = State.CLOSED
            self._events.append(Rejected(code, describe_rejection(code)))
        elif step is Step.ESTABLISHED:
            result = handshake.result
            assert result is not None
            self._establish_caller(handshake.isn, result, now_us)

    def _establish_caller(self, isn: int, result: CallerResult, now_us: int) -> None:
        self._establish(
            peer_socket_id=result.peer_socket_id,
            isn=isn,
            latency_ms=result.latency_ms,
            peer_latency_ms=result.peer_latency_ms,
            receive_keys=result.receive_keys,
            send_keys=result.send_keys,
            now_us=now_us,
        )

    def _send_handshake(self, now_us: int) -> None:
        handshake = self._handshake
        assert handshake is not None
        self.queue(handshake.request.encode(self.stamp(now_us), 0), now_us)
        self._hs_next_us = now_us + int(self.limits.handshake_resend * 1e6)

    # ------------------------------------------------------------------ output

    def send(self, payload: bytes, now: float) -> None:
        """Send one live message (at most ``limits.max_payload`` bytes, typically
        1316 = 7 TS packets). Ignored once closed; LocalProtocolError before the
        connection is established."""
        tx = self._tx
        if self.state is not State.CONNECTED or tx is None:
            if self.state is State.CLOSED:
                return
            raise LocalProtocolError("send() before the connection is established")
        tx.send(payload, _to_us(now))

    def deliver_into(self, sink: list[bytes | None]) -> None:
        """Deliver payloads by appending them to ``sink`` (in sequence order) instead
        of as ``DataReceived`` events; a None entry marks where packets were given up,
        at its place among the payloads (``PacketsDropped`` still reports them). For
        adapters that consume payloads in batches: no object per packet. Only once
        established."""
        rx = self._rx
        if rx is None:
            raise LocalProtocolError("deliver_into() before the connection is established")
        rx.sink = sink

    @property
    def has_output(self) -> bool:
        """Events or datagrams wait to be drained, or the connection is closed: the
        adapter has work beyond the payloads (cheaper to ask than to drain)."""
        return bool(self._out or self._events) or self.state is _CLOSED

    def events(self) -> list[Event]:
        """Drain the events produced since the last call."""
        events = self._events
        if not events:
            return []
        drained = events[:]
        events.clear()  # the receiver appends to this very list
        return drained

    def datagrams_to_send(self) -> list[bytes]:
        """Drain the datagrams to send to the peer, in order."""
        out = self._out
        if not out:
            return []
        self._out = []
        return out

    def close(self) -> None:
        """Close locally: a SHUTDOWN goes out if the connection was up. No event.
        Idempotent."""
        if self.state is State.CONNECTED:
            now_us = self._last_tx_us
            self.queue(shutdown_packet(self.stamp(now_us), self.peer_socket_id), now_us)
        self.state = State.CLOSED

    def _fail(self, reason: str) -> None:
        self.state = State.CLOSED
        self._events.append(ConnectionFailed(reason))

    # ------------------------------------------------------------------ timers

    def next_timer(self) -> float | None:
        """When :meth:`handle_timer` should run next (same clock as ``now``)."""
        rx, tx = self._rx, self._tx
        if self.state is not _CONNECTED or rx is None or tx is None:
            if self.state is _CLOSED:
                return None
            return min(self._hs_next_us, self._connect_deadline_us) / 1e6
        t = self._last_tx_us + self._keepalive_us
        d = self._last_rx_us + self._idle_us
        if d < t:
            t = d
        d = rx.deadline()
        if d < t:
            t = d
        d = tx.deadline()
        if d < t:
            t = d
        return t / 1e6

    def handle_timer(self, now: float) -> None:
        if self.state is State.CLOSED:
            return
        now_us = _to_us(now)
        if self.state is State.CONNECTING:
            if now_us >= self._connect_deadline_us:
                self._fail("connect timeout: no answer from the listener")
            elif now_us >= self._hs_next_us:
                self._send_handshake(now_us)
            return
        if now_us - self._last_rx_us >= self._idle_us:
            self._fail("peer idle timeout")
            return
        rx, tx = self._rx, self._tx
        assert rx is not None and tx is not None
        rx.on_timer(now_us)
        tx.on_timer(now_us)
        if now_us - self._last_tx_us >= self._keepalive_us:
            self.queue(keepalive_packet(self.stamp(now_us), self.peer_socket_id), now_us)

    # ------------------------------------------------------------------ status

    @property
    def closed(self) -> bool:
        """True once finished: flush ``datagrams_to_send()``, then forget it."""
        return self.state is State.CLOSED

    @property
    def established(self) -> bool:
        return self._rx is not None

    def stats(self) -> SrtStats:
        rx, tx = self._rx, self._tx
        rtt = self._rtt
        return SrtStats(
            rtt_ms=rtt.rtt / 1000,
            rtt_var_ms=rtt.var / 1000,
            latency_ms=self.latency_ms,
            peer_latency_ms=self.peer_latency_ms,
            encrypted=self.key_length > 0,
            key_length=self.key_length,
            packets_received=rx.packets_received if rx else 0,
            bytes_received=rx.bytes_received if rx else 0,
            packets_delivered=rx.packets_delivered if rx else 0,
            packets_lost=rx.packets_lost if rx else 0,
            packets_retransmitted_received=rx.packets_retransmitted if rx else 0,
            packets_dropped=rx.packets_dropped if rx else 0,
            packets_discarded=rx.packets_discarded if rx else 0,
            packets_undecryptable=rx.packets_undecryptable if rx else 0,
            packets_sent=tx.packets_sent if tx else 0,
            bytes_sent=tx.bytes_sent if tx else 0,
            packets_retransmitted=tx.packets_retransmitted if tx else 0,
            packets_send_dropped=tx.packets_dropped if tx else 0,
            send_buffer=tx.unacknowledged if tx else 0,
            receive_buffer=rx.buffered if rx else 0,
            malformed=self._malformed,
            key_refreshes_received=self._km_refreshes,
        )
