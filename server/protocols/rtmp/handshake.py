"""The simple RTMP handshake (protocols.md 5.1), both roles, sans-IO.

Only the simple scheme is implemented: ffmpeg, librtmp/OBS and rtmp2sink publish to
a server whose S1 carries a zero version, and push targets accept a simple client
handshake. We deliberately do **not** check that C2/S2 echo what we sent: go-rtmp
did and broke Restream.io clients (owncast issue #34).

Server: read C0+C1 -> send S0+S1+S2 (S2 = C1) -> read C2 -> done.
Client: send C0+C1 -> read S0+S1 -> send C2 (= S1) -> read S2 -> done.
"""

from __future__ import annotations

import os
import struct

from .errors import ProtocolError

RTMP_VERSION = 3
PACKET_SIZE = 1536
"""C1/S1/C2/S2 are all this long: time (4), zero or version (4), 1528 random bytes."""

_TIME_ZERO = struct.Struct(">II")


def make_c1_s1(epoch_ms: int, random_bytes: bytes | None = None) -> bytes:
    """Build a C1/S1 packet: our time, four zero bytes (= simple handshake), random fill."""
    filler = os.urandom(PACKET_SIZE - 8) if random_bytes is None else random_bytes
    if len(filler) != PACKET_SIZE - 8:
        raise ValueError(f"handshake random part must be {PACKET_SIZE - 8} bytes")
    return _TIME_ZERO.pack(epoch_ms & 0xFFFFFFFF, 0) + filler


class Handshake:
    """Byte-level handshake state machine for one role.

    ``receive`` accumulates input (a bounded 1537-byte buffer), and once a stage is
    complete queues our answer. After ``done`` becomes true, ``receive`` returned the
    bytes that followed the handshake: they belong to the chunk stream.
    """

    __slots__ = ("_buf", "_need", "_out", "_own", "_stage", "done", "is_server")

    def __init__(self, is_server: bool, *, random_bytes: bytes | None = None) -> None:
        self.is_server = is_server
        self._own = make_c1_s1(0, random_bytes)
        self._buf = bytearray()
        self._need = 1 + PACKET_SIZE  # C0+C1 or S0+S1
        self._stage = 0
        self._out: list[bytes] = []
        self.done = False

    def initiate(self) -> None:
        """Client only: queue C0+C1, the first bytes of the connection."""
        if self.is_server or self._stage != 0 or self._out:
            raise ValueError("only a fresh client handshake can be initiated")
        self._out.append(bytes([RTMP_VERSION]) + self._own)

    def data_to_send(self) -> bytes:
        """Drain the bytes this handshake wants on the wire."""
        out = b"".join(self._out)
        self._out.clear()
        return out

    def receive(self, data: bytes) -> bytes:
        """Consume handshake bytes; return whatever follows a completed handshake."""
        if self.done:
            return data
        self._buf += data
        while not self.done and len(self._buf) >= self._need:
            packet = bytes(self._buf[: self._need])
            del self._buf[: self._need]
            self._advance(packet)
        if self.done:
            rest = bytes(self._buf)
            self._buf.clear()
            return rest
        return b""

    def _advance(self, packet: bytes) -> None:
        """Act on one complete stage (1537 bytes, then 1536)."""
        if self._stage == 0:
            if packet[0] != RTMP_VERSION:
                raise ProtocolError(f"unsupported RTMP version {packet[0]} in handshake")
            peer_first = packet[1:]
            if self.is_server:  # S0 + S1 + S2, where S2 echoes C1
                self._out.append(bytes([RTMP_VERSION]) + self._own + peer_first)
            else:  # C2 echoes S1
                self._out.append(peer_first)
            self._stage = 1
            self._need = PACKET_SIZE
        else:  # C2 or S2: read and ignore (see module docstring)
            self._stage = 2
            self.done = True
