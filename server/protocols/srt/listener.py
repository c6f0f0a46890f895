"""SrtListener: the listening side of one UDP port (brief 1.2). Sans-IO.

It answers inductions statelessly (cookie), validates conclusions, asks the
application about each new caller (:class:`ConnectionRequest`, answered with
:meth:`SrtListener.accept` / :meth:`SrtListener.reject`), creates the
:class:`SrtConnection` and then routes datagrams to connections by destination
socket ID (checking that they come from the connection's peer address).

Bounded state: undecided conclusions (``max_pending_handshakes``, expiring after
``pending_timeout``), remembered rejections (``response_cache_size``, expiring after
``response_cache_ttl``); accepted connections answer repeated conclusions with
their stored response for as long as they live.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass

from .connection import SrtConnection, State
from .cookie import CookieJar
from .crypto import (
    CIPHER_AES_CTR,
    KeyMaterial,
    RandomBytes,
    ReceiveKeys,
    check_passphrase,
    parse_key_material,
)
from .errors import KeyMaterialError, ProtocolError
from .events import Address, ConnectionRequest, HandshakeRejected, ListenerEvent
from .handshake import (
    HS_MAGIC,
    MIN_PEER_VERSION,
    OUR_SRT_FLAGS,
    SRT_VERSION,
    ExtFlag,
    ExtType,
    Handshake,
    HandshakeType,
    RejectCode,
    SrtFlag,
    SrtHandshakeExt,
    decode_string_ext,
    encode_peer_ip,
    parse_handshake_packet,
    parse_srt_hs_ext,
    rejection_packet,
)
from .limits import SrtLimits
from .packet import HEADER_SIZE, U32
from .seqno import TS_MASK

_PeerKey = tuple[Address, int]
_CLOSED = State.CLOSED


class _Refusal(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Offer:
    """A validated conclusion request."""

    handshake: Handshake
    hsreq: SrtHandshakeExt
    streamid: str
    km: KeyMaterial | None
    km_raw: bytes


@dataclass(frozen=True, slots=True)
class _Pending:
    request: ConnectionRequest
    offer: _Offer
    expires: float


@dataclass(frozen=True, slots=True)
class ListenerStats:
    inductions: int
    conclusions: int
    pending: int
    connections: int
    cached_responses: int
    rejected: int
    bad_cookies: int
    unknown_destination: int
    malformed: int


def check_conclusion(hs: Handshake, limits: SrtLimits) -> _Offer:
    """Everything a conclusion must satisfy before the application is asked;
    raises :class:`_Refusal` with the wire rejection code."""
    if hs.version != 5:
        raise _Refusal(RejectCode.VERSION, f"handshake version {hs.version} (HSv4 caller)")
    exts = hs.extension_map()
    if ExtType.HSREQ not in exts:
        raise _Refusal(RejectCode.ROGUE, "conclusion without HSREQ")
    try:
        hsreq = parse_srt_hs_ext(exts[ExtType.HSREQ])
    except ProtocolError as exc:
        raise _Refusal(RejectCode.ROGUE, str(exc)) from exc
    if hsreq.version < MIN_PEER_VERSION:
        raise _Refusal(RejectCode.VERSION, f"SRT library version 0x{hsreq.version:06x}")
    if hsreq.flags & SrtFlag.STREAM:
        raise _Refusal(RejectCode.MESSAGEAPI, "stream/file API requested (live only)")
    if ExtType.CONGESTION in exts:
        congestion = decode_string_ext(exts[ExtType.CONGESTION])
        if congestion not in ("", "live"):
            raise _Refusal(RejectCode.CONGESTION, f"congestion control {congestion!r}")
    if ExtType.FILTER in exts and decode_string_ext(exts[ExtType.FILTER]):
        raise _Refusal(RejectCode.FILTER, "packet filter (FEC) not supported")
    if ExtType.GROUP in exts:
        raise _Refusal(RejectCode.GROUP, "socket groups (bonding) not supported")
    raw_sid = exts.get(ExtType.SID, b"")
    if len(raw_sid) > limits.max_streamid_bytes:
        raise _Refusal(RejectCode.ROGUE, f"stream ID of {len(raw_sid)} bytes")
    streamid = decode_string_ext(raw_sid)
    km_raw = exts.get(ExtType.KMREQ, b"")
    km: KeyMaterial | None = None
    if km_raw:
        try:
            km = parse_key_material(km_raw)
        except ProtocolError as exc:
            raise _Refusal(RejectCode.CRYPTO, str(exc)) from exc
        if km.cipher != CIPHER_AES_CTR:
            raise _Refusal(RejectCode.CRYPTO, f"cipher {km.cipher} (only AES-CTR)")
    return _Offer(hs, hsreq, streamid, km, km_raw)


class SrtListener:
    """One listening port's handshakes and connections. Never raises for peer input."""

    def __init__(
        self,
        limits: SrtLimits | None = None,
        now: float = 0.0,
        *,
        secret: bytes | None = None,
        random_bytes: RandomBytes = os.urandom,
    ) -> None:
        self.limits = limits if limits is not None else SrtLimits()
        self._random = random_bytes
        self._cookies = CookieJar(secret if secret is not None else random_bytes(32))
        self._start = now
        self._pending: OrderedDict[_PeerKey, _Pending] = OrderedDict()
        self._responses: OrderedDict[_PeerKey, tuple[bytes, float]] = OrderedDict()
        self._connections: dict[int, SrtConnection] = {}
        self._by_peer: dict[_PeerKey, int] = {}
        self._out: list[tuple[bytes, Address]] = []
        self._events: list[ListenerEvent] = []
        self._tokens = 0
        self._inductions = self._conclusions = self._rejected = 0
        self._bad_cookies = self._unknown = self._malformed = 0

    # ------------------------------------------------------------------ input

    def receive(self, datagram: bytes, addr: Address, now: float) -> SrtConnection | None:
        """One datagram from ``addr``. Returns the connection it was routed to (flush
        that connection's output/events and re-arm its timer), else None (flush the
        listener's own output/events)."""
        if len(datagram) < HEADER_SIZE:
            self._malformed += 1
            return None
        dst = U32.unpack_from(datagram, 12)[0]
        if dst:
            conn = self._connections.get(dst)
            if conn is None or conn.peer_addr != addr:
                self._unknown += 1
                return None
            conn.receive(datagram, now)
            if conn.state is _CLOSED:
                self.discard(conn)
            return conn
        try:
            _ts, _dst, hs = parse_handshake_packet(datagram)
        except ProtocolError:
            self._malformed += 1
            return None
        if hs.socket_id == 0:
            self._malformed += 1
        elif hs.hs_type == HandshakeType.INDUCTION:
            self._answer_induction(hs, addr, now)
        elif hs.hs_type == HandshakeType.CONCLUSION:
            self._on_conclusion(hs, addr, now)
        return None

    def _stamp(self, now: float) -> int:
        return int((now - self._start) * 1_000_000) & TS_MASK

    def _answer_induction(self, hs: Handshake, addr: Address, now: float) -> None:
        """Stateless: everything in the answer derives from the request, the address,
        the clock and the secret."""
        self._inductions += 1
        limits = self.limits
        answer = Handshake(
            version=5,
            encryption=limits.advertised_key_length // 8,
            extension=HS_MAGIC,
            isn=hs.isn,
            mtu=min(hs.mtu, limits.mtu) if hs.mtu >= 76 else limits.mtu,
            window=min(hs.window, limits.flow_window) if hs.window >= 32 else limits.flow_window,
            hs_type=HandshakeType.INDUCTION,
            socket_id=hs.socket_id,
            cookie=self._cookies.make(addr, now),
            peer_ip=encode_peer_ip(str(addr[0])),
        )
        self._out.append((answer.encode(self._stamp(now), hs.socket_id), addr))

    def _on_conclusion(self, hs: Handshake, addr: Address, now: float) -> None:
        key = (addr, hs.socket_id)
        if self._replay(key, addr, now):
            return
        if key in self._pending:
            return  # the application is still deciding; the caller keeps re-sending
        if not self._cookies.check(hs.cookie, addr, now):
            self._bad_cookies += 1
            return
        self._conclusions += 1
        try:
            offer = check_conclusion(hs, self.limits)
        except _Refusal as refusal:
            self._refuse(hs, key, refusal.code, refusal.reason, "", now)
            return
        if len(self._pending) >= self.limits.max_pending_handshakes:
            self._refuse(hs, key, RejectCode.BACKLOG, "too many pending", offer.streamid, now)
            return
        self._tokens += 1
        request = ConnectionRequest(
            addr=addr,
            streamid=offer.streamid,
            peer_socket_id=hs.socket_id,
            encrypted=offer.km is not None,
            key_length=offer.km.key_length if offer.km is not None else 0,
            latency_ms=offer.hsreq.send_latency_ms,
            peer_version=(
                offer.hsreq.version >> 16,
                (offer.hsreq.version >> 8) & 0xFF,
                offer.hsreq.version & 0xFF,
            ),
            token=self._tokens,
        )
        self._pending[key] = _Pending(request, offer, now + self.limits.pending_timeout)
        self._events.append(request)

    def _replay(self, key: _PeerKey, addr: Address, now: float) -> bool:
        """Answer a repeated conclusion with the identical earlier response."""
        socket_id = self._by_peer.get(key)
        if socket_id is not None:
            conn = self._connections.get(socket_id)
            if conn is not None and not conn.closed:
                self._out.append((conn.handshake_response, addr))
                return True
        cached = self._responses.get(key)
        if cached is not None and cached[1] > now:
            self._out.append((cached[0], addr))
            return True
        return False

    # ------------------------------------------------------------------ decisions

    def accept(
        self,
        request: ConnectionRequest,
        now: float,
        *,
        passphrase: str | None = None,
        latency_ms: int | None = None,
    ) -> SrtConnection | None:
        """Accept a pending caller with this stream's passphrase (None = clear).
        Returns the new connection (its first datagram is the conclusion answer), or
        None when the request is no longer pending or the key material does not match
        the passphrase (then the caller got 1010/1011 and ``HandshakeRejected`` is
        reported)."""
        secret = check_passphrase(passphrase)
        if latency_ms is not None and not 0 <= latency_ms <= 0xFFFF:
            raise ValueError("latency_ms must fit in 16 bits")
        pending = self._take(request)
        if pending is None:
            return None
        offer = pending.offer
        hs = offer.handshake
        key = (request.addr, request.peer_socket_id)
        try:
            keys = _receive_keys(offer.km, secret)
        except _Refusal as refusal:
            self._refuse(hs, key, refusal.code, refusal.reason, offer.streamid, now)
            return None
        return self._connect(request, offer, keys, latency_ms, now)

    def key_mismatch(self, request: ConnectionRequest, passphrase: str | None) -> int | None:
        """The rejection code :meth:`accept` would send with this passphrase (1010 wrong
        passphrase, 1011 passphrase on one side only), or None when it would match.

        Lets the application refuse a caller before it opens anything for it (a
        session, a takeover); the request stays pending either way.
        """
        secret = check_passphrase(passphrase)
        pending = self._pending.get((request.addr, request.peer_socket_id))
        if pending is None or pending.request.token != request.token:
            return None
        try:
            _receive_keys(pending.offer.km, secret)
        except _Refusal as refusal:
            return refusal.code
        return None

    def reject(self, request: ConnectionRequest, code: int, now: float) -> None:
        """Refuse a pending caller with a wire rejection code (2403 forbidden, 2404
        unknown key, 2409 already publishing, ...). Ignored if no longer pending."""
        if not 1000 <= code < 3000:
            raise ValueError("rejection code must be between 1000 and 2999 (wire value)")
        pending = self._take(request)
        if pending is not None:
            key = (request.addr, request.peer_socket_id)
            self._refuse(pending.offer.handshake, key, code, "", request.streamid, now, False)

    def _take(self, request: ConnectionRequest) -> _Pending | None:
        key = (request.addr, request.peer_socket_id)
        pending = self._pending.get(key)
        if pending is None or pending.request.token != request.token:
            return None
        del self._pending[key]
        return pending

    def _connect(
        self,
        request: ConnectionRequest,
        offer: _Offer,
        keys: ReceiveKeys | None,
        latency_ms: int | None,
        now: float,
    ) -> SrtConnection:
        limits = self.limits
        hs, hsreq = offer.handshake, offer.hsreq
        own = limits.latency_ms if latency_ms is None else latency_ms
        own_peer = limits.effective_peer_latency_ms if latency_ms is None else latency_ms
        recv_latency = max(own, hsreq.send_latency_ms)
        send_latency = max(own_peer, hsreq.recv_latency_ms)
        socket_id = self._new_socket_id()
        hsrsp = SrtHandshakeExt(SRT_VERSION, OUR_SRT_FLAGS, recv_latency, send_latency)
        extensions: tuple[tuple[int, bytes], ...] = ((ExtType.HSRSP, hsrsp.encode()),)
        ext_flags = ExtFlag.HSREQ
        if offer.km is not None:
            extensions += ((ExtType.KMRSP, offer.km_raw),)
            ext_flags |= ExtFlag.KMREQ
        answer = Handshake(
            version=5,
            encryption=offer.km.key_length // 8 if offer.km is not None else 0,
            extension=int(ext_flags),
            isn=hs.isn,
            mtu=min(hs.mtu, limits.mtu) if hs.mtu >= 76 else limits.mtu,
            window=min(hs.window, limits.flow_window) if hs.window >= 32 else limits.flow_window,
            hs_type=HandshakeType.CONCLUSION,
            socket_id=socket_id,
            cookie=hs.cookie,
            peer_ip=encode_peer_ip(str(request.addr[0])),
            extensions=extensions,
        ).encode(self._stamp(now), hs.socket_id)
        conn = SrtConnection.accepted(
            now,
            socket_id=socket_id,
            peer_addr=request.addr,
            peer_socket_id=hs.socket_id,
            isn=hs.isn,
            streamid=offer.streamid,
            latency_ms=recv_latency,
            peer_latency_ms=send_latency,
            receive_keys=keys,
            limits=limits,
            handshake_response=answer,
        )
        self._connections[socket_id] = conn
        self._by_peer[(request.addr, request.peer_socket_id)] = socket_id
        return conn

    def _new_socket_id(self) -> int:
        while True:
            socket_id = int.from_bytes(self._random(4), "big") & 0x3FFFFFFF
            if socket_id and socket_id not in self._connections:
                return socket_id

    def _refuse(
        self,
        hs: Handshake,
        key: _PeerKey,
        code: int,
        reason: str,
        streamid: str,
        now: float,
        report: bool = True,
    ) -> None:
        """Send a rejection and remember it for repeated conclusions."""
        packet = rejection_packet(code, hs, self._stamp(now))
        addr = key[0]
        self._out.append((packet, addr))
        responses = self._responses
        responses[key] = (packet, now + self.limits.response_cache_ttl)
        responses.move_to_end(key)
        while len(responses) > self.limits.response_cache_size:
            responses.popitem(last=False)
        self._rejected += 1
        if report:
            self._events.append(HandshakeRejected(addr, code, reason, streamid))

    # ------------------------------------------------------------------ output / timers

    def events(self) -> list[ListenerEvent]:
        events = self._events
        self._events = []
        return events

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        """Handshake answers, each with its destination address."""
        out = self._out
        self._out = []
        return out

    def next_timer(self) -> float | None:
        """Earliest expiry of a pending request or a remembered rejection (both maps
        are in expiry order)."""
        t: float | None = None
        for entry in self._pending.values():
            t = entry.expires
            break
        for _packet, expires in self._responses.values():
            t = expires if t is None else min(t, expires)
            break
        return t

    def handle_timer(self, now: float) -> None:
        pending = self._pending
        while pending:
            key, entry = next(iter(pending.items()))
            if entry.expires > now:
                break
            del pending[key]
            self._refuse(
                entry.offer.handshake,
                key,
                RejectCode.TIMEOUT,
                "application did not answer in time",
                entry.request.streamid,
                now,
            )
        responses = self._responses
        while responses:
            key, (_packet, expires) = next(iter(responses.items()))
            if expires > now:
                break
            del responses[key]

    def discard(self, conn: SrtConnection) -> None:
        """Forget a closed connection (also done automatically when a datagram closed it)."""
        if self._connections.get(conn.socket_id) is conn:
            del self._connections[conn.socket_id]
        if conn.peer_addr is not None:
            key = (conn.peer_addr, conn.peer_socket_id)
            if self._by_peer.get(key) == conn.socket_id:
                del self._by_peer[key]

    # ------------------------------------------------------------------ status

    @property
    def connections(self) -> dict[int, SrtConnection]:
        """Live connections by our socket ID (read-only use)."""
        return self._connections

    def stats(self) -> ListenerStats:
        return ListenerStats(
            inductions=self._inductions,
            conclusions=self._conclusions,
            pending=len(self._pending),
            connections=len(self._connections),
            cached_responses=len(self._responses),
            rejected=self._rejected,
            bad_cookies=self._bad_cookies,
            unknown_destination=self._unknown,
            malformed=self._malformed,
        )


def _receive_keys(km: KeyMaterial | None, secret: bytes | None) -> ReceiveKeys | None:
    """Unwrap the caller's key material with the stream's passphrase (brief 2.2)."""
    if km is None:
        if secret is not None:
            raise _Refusal(RejectCode.UNSECURE, "caller sent no key material; passphrase set")
        return None
    if secret is None:
        raise _Refusal(RejectCode.UNSECURE, "caller encrypts; no passphrase for this stream")
    keys = ReceiveKeys(secret)
    try:
        keys.install(km)
    except KeyMaterialError as exc:
        raise _Refusal(RejectCode.BADSECRET, "passphrase mismatch") from exc
    except ProtocolError as exc:
        raise _Refusal(RejectCode.CRYPTO, str(exc)) from exc
    return keys
