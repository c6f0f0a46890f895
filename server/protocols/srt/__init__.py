"""Sans-IO SRT (live mode, HSv5, AES-CTR): listener and caller roles.

Nothing here does I/O or reads a clock: the caller feeds datagrams and ``now``
(seconds, any monotonic origin -- the same clock for every call) and drains events
and datagrams. Modules follow the spec's split: :mod:`packet` (headers),
:mod:`control` (control bodies), :mod:`handshake` (HS body and extensions),
:mod:`cookie`, :mod:`streamid`, :mod:`crypto` (KM, PBKDF2, key wrap, AES-CTR),
:mod:`seqno` (31-bit arithmetic), :mod:`receiver` / :mod:`sender` (live data
path), :mod:`caller` (caller handshake), :mod:`listener`, :mod:`connection`,
:mod:`events`, :mod:`errors`, :mod:`limits`.

Contract::

    # listener: one per UDP port
    lst = SrtListener(SrtLimits(), now)
    conn = lst.receive(datagram, addr, now)   # routes by destination socket id;
                                              # never raises for peer input
    if conn is not None: flush conn (below)   # the datagram belonged to it
    lst.events() -> [ConnectionRequest | HandshakeRejected]
    lst.datagrams_to_send() -> [(bytes, addr)]
    lst.next_timer() -> float | None ; lst.handle_timer(now)
    ConnectionRequest(addr, streamid, peer_socket_id, encrypted, key_length, ...)
        -> conn = lst.accept(request, now, passphrase=None | str, latency_ms=None)
           (None if no longer pending or passphrase mismatch: 1010/1011 sent)
         | lst.reject(request, 2403, now)       # any 1000..2999 wire code
        -- decide now or later (pending_timeout); repeats are absorbed meanwhile
    lst.discard(conn)                         # after a timer closed it

    # caller
    conn = SrtConnection.caller(now, streamid="#!::r=live/key,m=publish",
                                passphrase=None | str, pbkeylen=16, latency_ms=120)

    # any connection
    conn.receive(datagram, now)               # never raises for peer input
    conn.events() -> [ConnectionEstablished | DataReceived | PacketsDropped
                      | ConnectionClosed | ConnectionFailed | Rejected]
    conn.datagrams_to_send() -> [bytes]       # all to the one peer
    conn.send(payload, now)                   # <= limits.max_payload bytes
    conn.next_timer() -> float | None ; conn.handle_timer(now)
    conn.stats() -> SrtStats ; conn.close()  ; conn.closed

Errors: :class:`ProtocolError` is the peer's fault and only ever raised by the
parser functions; :class:`LocalProtocolError` / ``ValueError`` are our misuse.
"""

from .connection import Role, SrtConnection, SrtStats, State
from .errors import KeyMaterialError, LocalProtocolError, ProtocolError
from .events import (
    Address,
    ConnectionClosed,
    ConnectionEstablished,
    ConnectionFailed,
    ConnectionRequest,
    DataReceived,
    Event,
    HandshakeRejected,
    ListenerEvent,
    PacketsDropped,
    Rejected,
)
from .handshake import RejectCode, describe_rejection
from .limits import LIVE_PAYLOAD, MAX_PAYLOAD, SrtLimits
from .listener import ListenerStats, SrtListener
from .packet import destination_socket_id
from .streamid import StreamIdError, StreamIdInfo, parse_streamid

__all__ = [
    "LIVE_PAYLOAD",
    "MAX_PAYLOAD",
    "Address",
    "ConnectionClosed",
    "ConnectionEstablished",
    "ConnectionFailed",
    "ConnectionRequest",
    "DataReceived",
    "Event",
    "HandshakeRejected",
    "KeyMaterialError",
    "ListenerEvent",
    "ListenerStats",
    "LocalProtocolError",
    "PacketsDropped",
    "ProtocolError",
    "RejectCode",
    "Rejected",
    "Role",
    "SrtConnection",
    "SrtLimits",
    "SrtListener",
    "SrtStats",
    "State",
    "StreamIdError",
    "StreamIdInfo",
    "describe_rejection",
    "destination_socket_id",
    "parse_streamid",
]
