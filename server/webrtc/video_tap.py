"""A WHIP publisher's video taken from aiortc right after SRTP, into our own depacketizer.

aiortc keeps ICE, DTLS, the SRTP keys, audio and all incoming RTCP; only the video's
RTP packets (and their RTX retransmissions) are diverted, at the narrowest point: the
ICE connection's ``data_received``, which aioice calls synchronously for every datagram
that is not STUN. There the packet is decrypted with the DTLS transport's own SRTP
session and handed to :class:`~server.media.rtp_h264.H264RtpReceiver` in the same call,
instead of travelling through a queue, a task switch, RTP parsing, routing, a bitrate
estimator and a jitter buffer in aiortc (several times the CPU of the rest of a
publisher). What the sender needs back is sent here: NACKs for gaps, PLIs, and a
receiver report with a REMB every second (``webrtc.publish_max_bitrate``: a ceiling only;
the sender's loss-based control, fed by the reports, decides below it, and a browser
trusts a REMB in its first seconds to ramp up): aiortc sent
them for the packets it saw, and it sees no video packets now.

Every private name of aiortc/aioice this needs is looked up in :meth:`VideoTap.install`
and checked there, against the pinned versions: a change fails the session's setup
loudly (and the unit test), never silently at the first packet.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pylibsrtp
from aiortc import RTCRtpReceiver, RTCRtpTransceiver
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    pack_remb_fci,
)

from server.media.rtp_h264 import AccessUnit, Bounds, H264RtpReceiver, RtpError

log = logging.getLogger("relaycast.webrtc")

AccessUnitSink = Callable[[AccessUnit], None]

REPORT_EVERY = 1.0
"""Seconds between receiver reports (RFC 3550's interval at this bandwidth share)."""


class VideoTap:
    """Install after ``setRemoteDescription`` (codecs negotiated, ICE transport made)."""

    def __init__(
        self,
        transceiver: RTCRtpTransceiver,
        bounds: Bounds,
        max_bitrate: int,
        sink: AccessUnitSink,
        clock: Callable[[], float],
    ) -> None:
        self.max_bitrate = max_bitrate
        self.receiver: RTCRtpReceiver = transceiver.receiver
        self.sink = sink
        self.clock = clock
        self.rtp = H264RtpReceiver(*_payload_types(transceiver), bounds)
        self.bad_packets = 0
        self.received_bytes = 0
        self._last_report = 0.0
        self._connection: Any = None
        self._pending: set[asyncio.Task[None]] = set()

    def install(self) -> None:
        dtls = self.receiver.transport
        connection = dtls.transport.iceGatherer._connection
        needs = (
            (connection, "data_received"),
            (dtls, "_rx_srtp"),
            (self.receiver, "_RTCRtpReceiver__rtcp_ssrc"),
            (self.receiver, "_send_rtcp"),
            (self.receiver, "_send_rtcp_nack"),
            (self.receiver, "_send_rtcp_pli"),
        )
        for owner, name in needs:
            if not hasattr(owner, name):
                raise RuntimeError(f"this aiortc/aioice has no {type(owner).__name__}.{name}")
        original = connection.data_received
        video = frozenset(self.rtp.payload_types | self.rtp.rtx.keys())

        def data_received(data: bytes, component: int) -> None:
            srtp = dtls._rx_srtp
            if srtp is None or len(data) < 12 or not 127 < data[0] < 192:
                original(data, component)
            elif data[1] & 0x7F in video:  # RTCP's packet types (192-208) never match
                self._packet(srtp, data)
            else:
                original(data, component)

        connection.data_received = data_received  # type: ignore[method-assign]
        self._connection = connection

    def skip_stun_parsing(self) -> None:
        """Once connected: datagrams that are RTP or RTCP by their first byte (RFC 7983
        demultiplexing) go straight to ``data_received``, without aioice first trying
        to parse each as a STUN message (an exception per packet). Its sockets exist
        only after gathering, hence a second step."""
        connection = self._connection
        for protocol in getattr(connection, "_protocols", ()):
            original = protocol.datagram_received
            component = protocol.local_candidate.component

            def datagram_received(
                data: bytes, addr: Any, original: Any = original, component: int = component
            ) -> None:
                if data and 127 < data[0] < 192:
                    connection.data_received(data, component)
                else:
                    original(data, addr)

            protocol.datagram_received = datagram_received

    def _packet(self, srtp: pylibsrtp.Session, data: bytes) -> None:
        try:
            plain = srtp.unprotect(data)
            units = self.rtp.packet(plain, self.clock())
        except (pylibsrtp.Error, RtpError):
            self.bad_packets += 1
            return
        self.received_bytes += len(plain)
        for unit in units:
            self.sink(unit)
        lost = self.rtp.take_nacks()
        if lost and self.rtp.ssrc is not None:
            self._send(self.receiver._send_rtcp_nack(self.rtp.ssrc, lost))
        if self.rtp.keyframe_wanted:
            self.rtp.keyframe_wanted = False
            self.request_keyframe()

    def request_keyframe(self) -> None:
        """A PLI to the publisher (once it has sent anything)."""
        if self.rtp.ssrc is not None:
            self._send(self.receiver._send_rtcp_pli(self.rtp.ssrc))

    def report_due(self, now: float) -> None:
        """A receiver report and a REMB, when one is due (called often; sends at most
        one per ``REPORT_EVERY``)."""
        ssrc, own = self.rtp.ssrc, _rtcp_ssrc(self.receiver)
        if ssrc is None or own is None or now - self._last_report < REPORT_EVERY:
            return
        self._last_report = now
        report = self.rtp.report()
        info = RtcpReceiverInfo(
            ssrc=ssrc,
            fraction_lost=report.fraction_lost,
            packets_lost=report.packets_lost,
            highest_sequence=report.highest_sequence,
            jitter=0,
            lsr=0,
            dlsr=0,
        )
        remb = RtcpPsfbPacket(
            fmt=RTCP_PSFB_APP, ssrc=own, media_ssrc=0, fci=pack_remb_fci(self.max_bitrate, [ssrc])
        )
        self._send(self.receiver._send_rtcp(RtcpRrPacket(ssrc=own, reports=[info])))
        self._send(self.receiver._send_rtcp(remb))

    def _send(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)


def _payload_types(transceiver: RTCRtpTransceiver) -> tuple[frozenset[int], dict[int, int]]:
    """The negotiated H.264 payload types, and each RTX payload type's original."""
    media: set[int] = set()
    rtx: dict[int, int] = {}
    codecs = getattr(transceiver, "_codecs", None)
    if codecs is None:
        raise RuntimeError("this aiortc has no RTCRtpTransceiver._codecs")
    for codec in codecs:
        if codec.mimeType.lower() == "video/rtx":
            apt = codec.parameters.get("apt")
            if isinstance(apt, int):
                rtx[codec.payloadType] = apt
        elif codec.mimeType.lower() == "video/h264":
            media.add(codec.payloadType)
    return frozenset(media), {k: v for k, v in rtx.items() if v in media}


def _rtcp_ssrc(receiver: RTCRtpReceiver) -> int | None:
    """The SSRC our RTCP goes out with (aiortc gives the receiver one when connecting)."""
    ssrc: int | None = getattr(receiver, "_RTCRtpReceiver__rtcp_ssrc", None)
    return ssrc
