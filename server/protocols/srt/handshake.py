"""The HSv5 handshake body and its extensions (brief 1.2): the 48-byte CIF,
HSREQ/HSRSP, the word-swapped string extensions (SID, congestion, filter), and the
rejection codes. Key-material extension bodies are parsed in :mod:`crypto`.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

from .errors import ProtocolError
from .packet import HEADER, HEADER_SIZE, ControlType, encode_control

HS_CIF = struct.Struct(">IHHIIIIII16s")
HS_CIF_SIZE = 48
EXT_HEADER = struct.Struct(">HH")
SRT_HS_EXT = struct.Struct(">III")

HS_MAGIC = 0x4A17  # extension field of an HSv5 induction response
SRT_VERSION = 0x010501  # what we claim: libsrt 1.5.1
MIN_PEER_VERSION = 0x010300  # libsrt refuses HSv5 peers below 1.3.0
HANDSHAKE_WORD0 = 0x80000000  # control bit, type 0, subtype 0


class HandshakeType(IntEnum):
    """Handshake type field (CIF offset 20). Values >= 1000 below the 0xFFFFFFFx
    block are rejection codes; never compare unsigned against 1000 alone."""

    WAVEAHAND = 0
    INDUCTION = 1
    CONCLUSION = 0xFFFFFFFF
    AGREEMENT = 0xFFFFFFFE
    DONE = 0xFFFFFFFD


class ExtFlag(IntFlag):
    """Extension field of a conclusion: which extension groups are present."""

    HSREQ = 1
    KMREQ = 2
    CONFIG = 4


class ExtType(IntEnum):
    HSREQ = 1
    HSRSP = 2
    KMREQ = 3
    KMRSP = 4
    SID = 5
    CONGESTION = 6
    FILTER = 7
    GROUP = 8


class SrtFlag(IntFlag):
    """HSREQ/HSRSP capability flags."""

    TSBPDSND = 0x01
    TSBPDRCV = 0x02
    CRYPT = 0x04
    TLPKTDROP = 0x08
    PERIODICNAK = 0x10
    REXMITFLG = 0x20
    STREAM = 0x40
    PACKET_FILTER = 0x80


#: What we advertise: TSBPD both ways, crypto, too-late drop, periodic NAK, R flag.
OUR_SRT_FLAGS = 0x3F


class RejectCode(IntEnum):
    """Handshake rejection codes *as on the wire* (libsrt reason + 1000; application
    codes are libsrt's 1xxx access-control codes + 1000, i.e. 2xxx)."""

    UNKNOWN = 1000
    SYSTEM = 1001
    PEER = 1002
    RESOURCE = 1003
    ROGUE = 1004
    BACKLOG = 1005
    IPE = 1006
    CLOSE = 1007
    VERSION = 1008
    RDVCOOKIE = 1009
    BADSECRET = 1010
    UNSECURE = 1011
    MESSAGEAPI = 1012
    CONGESTION = 1013
    FILTER = 1014
    GROUP = 1015
    TIMEOUT = 1016
    CRYPTO = 1017
    BAD_REQUEST = 2400
    UNAUTHORIZED = 2401
    OVERLOAD = 2402
    FORBIDDEN = 2403
    NOT_FOUND = 2404
    BAD_MODE = 2405
    UNACCEPTABLE = 2406
    CONFLICT = 2409
    NOTSUP_MEDIA = 2415
    LOCKED = 2423
    FAILED_DEPEND = 2424
    ISE = 2500
    UNIMPLEMENTED = 2501
    GATEWAY = 2502
    DOWN = 2503


def is_rejection(hs_type: int) -> bool:
    """True for a handshake type that carries a rejection code."""
    return 1000 <= hs_type < 0x80000000


def describe_rejection(code: int) -> str:
    """Human-readable name of a wire rejection code (unknown ones included)."""
    try:
        name = RejectCode(code).name
    except ValueError:
        kind = "application" if 2000 <= code < 3000 else "unknown"
        return f"{kind} rejection {code}"
    return f"{name} ({code})"


@dataclass(frozen=True, slots=True)
class Handshake:
    """A handshake CIF plus its extensions as raw ``(type, contents)`` blocks."""

    version: int
    encryption: int
    extension: int
    isn: int
    mtu: int
    window: int
    hs_type: int
    socket_id: int
    cookie: int
    peer_ip: bytes = bytes(16)
    extensions: tuple[tuple[int, bytes], ...] = field(default=())

    def encode_cif(self) -> bytes:
        parts = [
            HS_CIF.pack(
                self.version,
                self.encryption,
                self.extension,
                self.isn,
                self.mtu,
                self.window,
                self.hs_type,
                self.socket_id,
                self.cookie,
                self.peer_ip,
            )
        ]
        for ext_type, contents in self.extensions:
            if len(contents) % 4:
                raise ValueError("extension contents must be whole 32-bit words")
            parts.append(EXT_HEADER.pack(ext_type, len(contents) // 4))
            parts.append(contents)
        return b"".join(parts)

    def encode(self, timestamp: int, dst: int) -> bytes:
        """The whole handshake datagram."""
        return encode_control(ControlType.HANDSHAKE, 0, 0, timestamp, dst, self.encode_cif())

    def extension_map(self) -> dict[int, bytes]:
        """Extensions by type; the first block of a type wins."""
        out: dict[int, bytes] = {}
        for ext_type, contents in self.extensions:
            out.setdefault(ext_type, contents)
        return out


def parse_handshake_cif(cif: bytes) -> Handshake:
    if len(cif) < HS_CIF_SIZE:
        raise ProtocolError(f"handshake body of {len(cif)} bytes (need 48)")
    fields = HS_CIF.unpack_from(cif)
    extensions: list[tuple[int, bytes]] = []
    offset = HS_CIF_SIZE
    end = len(cif)
    while end - offset >= 4:
        ext_type, words = EXT_HEADER.unpack_from(cif, offset)
        offset += 4
        size = words * 4
        if offset + size > end:
            raise ProtocolError(f"handshake extension {ext_type} overruns the packet")
        extensions.append((ext_type, bytes(cif[offset : offset + size])))
        offset += size
    version, encryption, extension, isn, mtu, window, hs_type, socket_id, cookie, peer_ip = fields
    return Handshake(
        version=version,
        encryption=encryption,
        extension=extension,
        isn=isn,
        mtu=mtu,
        window=window,
        hs_type=hs_type,
        socket_id=socket_id,
        cookie=cookie,
        peer_ip=peer_ip,
        extensions=tuple(extensions),
    )


def parse_handshake_packet(datagram: bytes) -> tuple[int, int, Handshake]:
    """``(timestamp, destination socket id, handshake)`` of a handshake datagram."""
    if len(datagram) < HEADER_SIZE:
        raise ProtocolError("datagram shorter than a header")
    word0, _info, timestamp, dst = HEADER.unpack_from(datagram)
    if word0 != HANDSHAKE_WORD0:
        raise ProtocolError("not a handshake packet")
    return timestamp, dst, parse_handshake_cif(datagram[HEADER_SIZE:])


@dataclass(frozen=True, slots=True)
class SrtHandshakeExt:
    """HSREQ / HSRSP: library version, capability flags, and the two TSBPD delays
    (``recv_latency_ms`` travels in the high 16 bits, ``send_latency_ms`` low)."""

    version: int
    flags: int
    recv_latency_ms: int
    send_latency_ms: int

    def encode(self) -> bytes:
        latency = ((self.recv_latency_ms & 0xFFFF) << 16) | (self.send_latency_ms & 0xFFFF)
        return SRT_HS_EXT.pack(self.version, self.flags, latency)


def parse_srt_hs_ext(contents: bytes) -> SrtHandshakeExt:
    if len(contents) < 12:
        raise ProtocolError(f"HSREQ/HSRSP of {len(contents)} bytes (need 12)")
    version, flags, latency = SRT_HS_EXT.unpack_from(contents)
    return SrtHandshakeExt(version, flags, latency >> 16, latency & 0xFFFF)


def encode_string_ext(text: str) -> bytes:
    """String extensions (SID, congestion, filter): UTF-8, NUL-padded to whole words,
    and every 32-bit word byte-reversed (libsrt writes them as little-endian words)."""
    raw = text.encode("utf-8")
    raw += bytes(-len(raw) % 4)
    return b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))


def decode_string_ext(contents: bytes) -> str:
    """Inverse of :func:`encode_string_ext`; invalid UTF-8 is replaced, not fatal."""
    usable = len(contents) - len(contents) % 4
    raw = b"".join(contents[i : i + 4][::-1] for i in range(0, usable, 4))
    return raw.rstrip(b"\x00").decode("utf-8", errors="replace")


def encode_peer_ip(host: str) -> bytes:
    """Peer address field as libsrt writes it: each 32-bit word in little-endian
    order (127.0.0.1 -> ``01 00 00 7f``). Nobody validates it; zeros if unparsable."""
    try:
        packed = ipaddress.ip_address(host.split("%", 1)[0]).packed
    except ValueError:
        return bytes(16)
    packed += bytes(16 - len(packed))
    return b"".join(packed[i : i + 4][::-1] for i in range(0, 16, 4))


def decode_peer_ip(field_bytes: bytes) -> str:
    """Inverse of :func:`encode_peer_ip` (IPv4 when the last three words are zero)."""
    raw = b"".join(field_bytes[i : i + 4][::-1] for i in range(0, 16, 4))
    if raw[4:] == bytes(12):
        return str(ipaddress.IPv4Address(raw[:4]))
    return str(ipaddress.IPv6Address(raw))


def rejection_packet(code: int, request: Handshake, timestamp: int) -> bytes:
    """A 48-byte handshake without extensions whose type is the rejection code,
    addressed to the caller's socket ID."""
    hs = Handshake(
        version=5,
        encryption=0,
        extension=0,
        isn=request.isn,
        mtu=request.mtu,
        window=request.window,
        hs_type=code,
        socket_id=0,
        cookie=request.cookie,
        peer_ip=request.peer_ip,
    )
    return hs.encode(timestamp, request.socket_id)
