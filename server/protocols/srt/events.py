"""Events reported by :class:`SrtListener` and :class:`SrtConnection`.

All are frozen dataclasses except :class:`DataReceived`, which is created once per
packet: it is a plain slotted dataclass because a frozen one costs several times
more to construct. Treat it as immutable all the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

Address: TypeAlias = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class ConnectionRequest:
    """Listener: a caller completed the cookie exchange and sent a valid conclusion.
    Answer with ``listener.accept(request, now, passphrase=..., latency_ms=...)`` or
    ``listener.reject(request, code, now)`` -- now or later (within
    ``SrtLimits.pending_timeout``); repeated conclusions meanwhile are absorbed.

    ``encrypted``/``key_length``: the caller sent key material (length in bytes);
    ``latency_ms``: the receive latency the caller asks us to use (HSREQ);
    ``peer_version``: its SRT library version as ``(major, minor, patch)``."""

    addr: Address
    streamid: str
    peer_socket_id: int
    encrypted: bool
    key_length: int
    latency_ms: int
    peer_version: tuple[int, int, int]
    token: int


@dataclass(frozen=True, slots=True)
class HandshakeRejected:
    """Listener: a conclusion was refused by the protocol core itself (bad version,
    file mode, FEC, bonding, passphrase mismatch, backlog ...) -- for logs/metrics.
    Rejections the application asked for with ``reject()`` are not reported again."""

    addr: Address
    code: int
    reason: str
    streamid: str


@dataclass(frozen=True, slots=True)
class ConnectionEstablished:
    """The handshake is complete. ``latency_ms`` is our receive (TSBPD) latency,
    ``peer_latency_ms`` the peer's, which bounds how long our sender keeps packets.
    ``key_length`` is 0 for clear connections, else 16/24/32."""

    socket_id: int
    peer_socket_id: int
    streamid: str
    latency_ms: int
    peer_latency_ms: int
    encrypted: bool
    key_length: int


@dataclass(slots=True)
class DataReceived:
    """One payload, delivered in sequence order (at its play time with TSBPD
    delivery). ``timestamp`` is the sender's clock in microseconds, unwrapped past
    2**32; ``seq`` the 31-bit wire sequence number."""

    payload: bytes
    timestamp: int
    seq: int


@dataclass(frozen=True, slots=True)
class PacketsDropped:
    """``count`` packets from ``first_seq`` on (wire numbers, wrapping) will never be
    delivered: too late (TLPKTDROP, ``reason`` "too late") or given up by the sender
    ("dropped by sender", DROPREQ; ``count`` then counts only the missing ones of the
    range). A media consumer should treat this as a discontinuity."""

    first_seq: int
    count: int
    reason: str


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer shut the connection down (SHUTDOWN). The connection is closed."""

    reason: str


@dataclass(frozen=True, slots=True)
class ConnectionFailed:
    """Peer idle timeout, connect timeout or a broken handshake. The connection is
    closed; nothing was sent to the peer."""

    reason: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """Caller: the listener refused the connection with ``code`` (wire value, e.g.
    1010 bad passphrase, 2403 forbidden). The connection is closed."""

    code: int
    reason: str


ListenerEvent: TypeAlias = ConnectionRequest | HandshakeRejected

Event: TypeAlias = (
    ConnectionEstablished
    | DataReceived
    | PacketsDropped
    | ConnectionClosed
    | ConnectionFailed
    | Rejected
)
