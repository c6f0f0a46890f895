"""What WHIP and WHEP share around aiortc: the peer connection, offers, codecs, candidates.

aiortc is the maintained WebRTC stack for Python (ICE, DTLS-SRTP, RTP/RTCP, NACK,
jitter buffer). We use it for the transport and keep media as the bus has it: received
RTP is taken right after SRTP (``server.webrtc.rtp_tap``) and sent frames are handed
over already encoded (``av.Packet``, aiortc's pass-through path), so no video is ever
decoded or encoded here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
import socket
from collections.abc import Iterable

from aioice import Candidate, turn
from aioice.candidate import candidate_foundation, candidate_priority
from aioice.ice import Connection, StunProtocol
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.exceptions import InvalidAccessError, InvalidStateError, OperationError
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import SessionDescription

VIDEO_MIME = "video/H264"
AUDIO_MIME = "audio/opus"
_RTX_MIME = "video/rtx"


class BadOffer(ValueError):
    """The SDP offer cannot be answered; the message says why, in one line."""


class PortsExhausted(RuntimeError):
    """No UDP port of ``webrtc.udp_port_min..max`` was free for a session."""


def new_peer() -> RTCPeerConnection:
    """A peer with no STUN/TURN servers: aiortc's default asks Google's STUN server,
    which a server on a public address does not need and must not depend on."""
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


def check_offer(text: str, want: str) -> frozenset[str]:
    """Parse an offer; return the kinds ("audio", "video") it sends or receives with a
    codec we carry. ``want`` is "send" (WHIP: the peer sends) or "recv" (WHEP)."""
    try:
        description = SessionDescription.parse(text)
    except Exception as exc:  # aiortc's parser raises whatever the bad line caused
        raise BadOffer(f"malformed SDP offer: {type(exc).__name__}") from None
    if not description.media:
        raise BadOffer("the offer has no media section")
    kinds: set[str] = set()
    for media in description.media:
        if media.kind not in ("audio", "video"):
            continue
        direction = media.direction or "sendrecv"
        if want not in direction:  # "sendrecv" holds both
            continue
        mime = VIDEO_MIME if media.kind == "video" else AUDIO_MIME
        if any(codec.mimeType.lower() == mime.lower() for codec in media.rtp.codecs):
            kinds.add(media.kind)
    if "video" not in kinds:
        raise BadOffer("the offer has no H.264 video (relaycast carries H.264 over WebRTC)")
    return frozenset(kinds)


def add_transceiver(
    pc: RTCPeerConnection, kind: str, direction: str, track: MediaStreamTrack | None = None
) -> RTCRtpTransceiver:
    """A transceiver that answers H.264 (with RTX for retransmissions) or Opus only.

    Created before ``setRemoteDescription``, which negotiates the codecs and takes the
    first free transceiver of each kind: left to itself aiortc would pick VP8 first,
    which neither the bus's outputs nor passthrough can use.
    """
    transceiver = pc.addTransceiver(track or kind, direction=direction)
    capabilities = RTCRtpReceiver.getCapabilities(kind)
    assert capabilities is not None  # audio and video always have some
    wanted = (VIDEO_MIME, _RTX_MIME) if kind == "video" else (AUDIO_MIME,)
    transceiver.setCodecPreferences([c for c in capabilities.codecs if c.mimeType in wanted])
    return transceiver


async def accept_offer(pc: RTCPeerConnection, offer: str) -> None:
    """``setRemoteDescription``, with aiortc's refusals of the offer as ``BadOffer``."""
    try:
        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
    except (ValueError, OperationError, InvalidAccessError, InvalidStateError) as exc:
        raise BadOffer(f"the offer cannot be answered: {exc}") from None


def with_public_ips(sdp: str, public_ips: Iterable[str]) -> str:
    """Each host candidate again on every public address, same port, lower priority:
    behind 1:1 NAT the peer reaches the public address and the NAT forwards to ours."""
    ips = list(public_ips)
    if not ips:
        return sdp
    lines: list[str] = []
    for line in sdp.split("\r\n"):
        lines.append(line)
        if not line.startswith("a=candidate:") or " typ host" not in line:
            continue
        fields = line[len("a=candidate:") :].split(" ")
        if len(fields) < 8:
            continue
        for n, ip in enumerate(ips, start=1):
            extra = [f"{fields[0]}{n}", fields[1], fields[2], str(max(1, int(fields[3]) - n))]
            lines.append("a=candidate:" + " ".join([*extra, ip, *fields[5:]]))
    return "\r\n".join(lines)


def bind_in_range(pc: RTCPeerConnection, ports: range | None) -> None:
    """Make the peer's host candidates bind inside ``ports`` instead of on ephemeral
    ports, so that a firewall need open only ``webrtc.udp_port_min..max``.

    aioice binds port 0 and has no setting for it, so each ICE connection's candidate
    gathering is replaced by :func:`_host_candidates` (host candidates only: our peers
    have no STUN or TURN server). Call after ``setRemoteDescription`` (which settles the
    bundled transports) and before ``setLocalDescription`` (which gathers); tested
    against the pinned aiortc and aioice.
    """
    if ports is None:
        return
    for transceiver in pc.getTransceivers():
        transport = transceiver.sender.transport
        if transport is None:
            continue
        connection = transport.transport.iceGatherer._connection
        gather = functools.partial(_host_candidates, connection, ports)
        connection.get_component_candidates = gather  # type: ignore[method-assign]


async def _host_candidates(
    connection: Connection, ports: range, component: int, addresses: list[str]
) -> list[Candidate]:
    loop = asyncio.get_running_loop()
    candidates = []
    for address in addresses:
        start = secrets.randbelow(len(ports))  # concurrent sessions rarely collide
        for n in range(len(ports)):
            port = ports[(start + n) % len(ports)]
            try:
                transport, protocol = await loop.create_datagram_endpoint(
                    lambda: StunProtocol(connection), local_addr=(address, port)
                )
            except OSError:
                continue
            break
        else:
            continue  # no free port on this address
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, turn.UDP_SOCKET_BUFFER_SIZE)
        host, bound = transport.get_extra_info("sockname")[:2]
        protocol.local_candidate = Candidate(
            foundation=candidate_foundation("host", "udp", host),
            component=component,
            transport="udp",
            priority=candidate_priority(component, "host"),
            host=host,
            port=bound,
            type="host",
        )
        connection._protocols.append(protocol)
        candidates.append(protocol.local_candidate)
    return candidates


def check_candidates(answer: str, ports: range | None) -> None:
    """Raise ``PortsExhausted`` when a port range left the answer without a candidate."""
    if ports is not None and "a=candidate:" not in answer:
        raise PortsExhausted(
            f"no free UDP port in webrtc.udp_port_min..max ({ports.start}-{ports.stop - 1})"
        )


async def receiver_report_stamp(pc: RTCPeerConnection) -> object:
    """The newest RTCP receiver report our senders have heard, as an opaque stamp that
    changes whenever another one arrives (None before the first): a viewer's browser
    sends one about every second, and nothing once it is gone."""
    stamps = []
    for sender in pc.getSenders():
        report = await sender.getStats()
        stamps += [s.timestamp for s in report.values() if s.type == "remote-inbound-rtp"]
    return max(stamps, default=None)


async def close_quietly(pc: RTCPeerConnection) -> None:
    """Close a peer; a failure while tearing down is not worth more than a shrug."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(pc.close(), 5.0)
