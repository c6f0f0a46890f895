"""A WHIP publisher's media taken from aiortc right after SRTP, into our own receivers.

aiortc keeps ICE, DTLS, the SRTP keys and all incoming RTCP; the RTP packets of the
video (with their RTX retransmissions) and of the audio are diverted at the narrowest
point: the ICE connection's ``data_received``, which aioice calls synchronously for
every datagram that is not STUN. There a packet is decrypted with the DTLS transport's
own SRTP session and handed to :class:`~server.media.rtp_h264.H264RtpReceiver` or
:class:`~server.media.rtp_opus.OpusRtpReceiver` in the same call, instead of travelling
through a queue, a task switch, RTP parsing, routing, a bitrate estimator and a jitter
buffer in aiortc (several times the CPU of the rest of a publisher).

What the sender needs back is sent here, since aiortc no longer sees these packets:
NACKs for video gaps, PLIs, and every second a receiver report for both tracks with a
REMB (``webrtc.publish_max_bitrate``: a ceiling only; below it the sender's loss-based
control, fed by the reports, decides, and a browser trusts a REMB in its first seconds
to ramp up).

Every private name of aiortc/aioice this needs is looked up in :meth:`RtpTap.install`
and checked there, against the pinned versions: a change fails the session's setup
loudly (and the unit test), never silently at the first packet.
"""

from __future__ import annotations

import asyncio
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

from server.media.rtp import Report, RtpError
from server.media.rtp_h264 import AccessUnit, Bounds, H264RtpReceiver
from server.media.rtp_opus import OpusRtpReceiver

AccessUnitSink = Callable[[AccessUnit], None]
OpusSink = Callable[[int, bytes], None]
"""Called with (48 kHz ticks from the first packet, one Opus packet)."""

REPORT_EVERY = 1.0
"""Seconds between receiver reports (RFC 3550's interval at this bandwidth share)."""
PLI_EVERY = 0.5
"""Seconds between keyframe requests for lost pictures: a keyframe takes a round trip
and an encode to arrive, and each picture lost meanwhile would ask again."""


class RtpTap:
    """Install after ``setRemoteDescription`` (codecs negotiated, ICE transport made)."""

    def __init__(
        self,
        video: RTCRtpTransceiver,
        audio: RTCRtpTransceiver | None,
        bounds: Bounds,
        max_bitrate: int,
        sinks: tuple[AccessUnitSink, OpusSink],
        clock: Callable[[], float],
    ) -> None:
        self.receiver: RTCRtpReceiver = video.receiver
        self.max_bitrate = max_bitrate
        self.on_unit, self.on_opus = sinks
        self.clock = clock
        media, rtx = _payload_types(video, "video/h264", "video/rtx")
        self.video = H264RtpReceiver(media, rtx, bounds)
        opus = _payload_types(audio, "audio/opus", "")[0] if audio else frozenset()
        self.audio = OpusRtpReceiver(opus)
        self.bad_packets = 0
        self._last_report = 0.0
        self._last_pli = float("-inf")
        self._connection: Any = None
        self._pending: set[asyncio.Task[None]] = set()

    def install(self) -> None:
        dtls = self.receiver.transport
        connection = dtls.transport.iceGatherer._connection
        needs = (
            (connection, "data_received"),
            (connection, "_protocols"),
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
        video = frozenset(self.video.payload_types | self.video.rtx.keys())
        audio = self.audio.payload_types

        def data_received(data: bytes, component: int) -> None:
            srtp = dtls._rx_srtp
            if srtp is None or len(data) < 12 or not 127 < data[0] < 192:
                original(data, component)
                return
            kind = data[1] & 0x7F  # RTCP's packet types (192-208) never match
            if kind in video:
                self._video_packet(srtp, data)
            elif kind in audio:
                self._audio_packet(srtp, data)
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
        for protocol in connection._protocols:
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

    # ------------------------------------------------------------ media

    def _video_packet(self, srtp: pylibsrtp.Session, data: bytes) -> None:
        now = self.clock()
        try:
            units = self.video.packet(srtp.unprotect(data), now)
        except (pylibsrtp.Error, RtpError):
            self.bad_packets += 1
            return
        for unit in units:
            self.on_unit(unit)
        lost = self.video.take_nacks()
        if lost and self.video.ssrc is not None:
            self._send(self.receiver._send_rtcp_nack(self.video.ssrc, lost))
        if self.video.keyframe_wanted and now - self._last_pli >= PLI_EVERY:
            self.video.keyframe_wanted = False
            self._last_pli = now
            self.request_keyframe()

    def _audio_packet(self, srtp: pylibsrtp.Session, data: bytes) -> None:
        try:
            frame = self.audio.packet(srtp.unprotect(data))
        except (pylibsrtp.Error, RtpError):
            self.bad_packets += 1
            return
        if frame is not None:
            self.on_opus(*frame)

    # ------------------------------------------------------------ RTCP

    def request_keyframe(self) -> None:
        """A PLI to the publisher (once it has sent video)."""
        if self.video.ssrc is not None:
            self._send(self.receiver._send_rtcp_pli(self.video.ssrc))

    def report_due(self, now: float) -> None:
        """Receiver reports and a REMB, when due (called often; sends at most once per
        ``REPORT_EVERY``)."""
        own = _rtcp_ssrc(self.receiver)
        if own is None or self.video.ssrc is None or now - self._last_report < REPORT_EVERY:
            return
        self._last_report = now
        reports = [_block(self.video.ssrc, self.video.report())]
        if self.audio.ssrc is not None:
            reports.append(_block(self.audio.ssrc, self.audio.report()))
        fci = pack_remb_fci(self.max_bitrate, [self.video.ssrc])
        remb = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=own, media_ssrc=0, fci=fci)
        self._send(self.receiver._send_rtcp(RtcpRrPacket(ssrc=own, reports=reports)))
        self._send(self.receiver._send_rtcp(remb))

    def _send(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)


def _block(ssrc: int, report: Report) -> RtcpReceiverInfo:
    """No jitter and no LSR/DLSR: both optional (zero), and the sender's loss-based
    control needs only the loss figures."""
    return RtcpReceiverInfo(
        ssrc=ssrc,
        fraction_lost=report.fraction_lost,
        packets_lost=report.packets_lost,
        highest_sequence=report.highest_sequence,
        jitter=0,
        lsr=0,
        dlsr=0,
    )


def _payload_types(
    transceiver: RTCRtpTransceiver, mime: str, rtx_mime: str
) -> tuple[frozenset[int], dict[int, int]]:
    """The negotiated payload types of ``mime``, and each RTX payload type's original."""
    codecs = getattr(transceiver, "_codecs", None)
    if codecs is None:
        raise RuntimeError("this aiortc has no RTCRtpTransceiver._codecs")
    media = frozenset(c.payloadType for c in codecs if c.mimeType.lower() == mime)
    rtx: dict[int, int] = {}
    for codec in codecs:
        apt = codec.parameters.get("apt")
        if codec.mimeType.lower() == rtx_mime and apt in media:
            rtx[codec.payloadType] = apt
    return media, rtx


def _rtcp_ssrc(receiver: RTCRtpReceiver) -> int | None:
    """The SSRC our RTCP goes out with (aiortc gives the receiver one when connecting)."""
    ssrc: int | None = getattr(receiver, "_RTCRtpReceiver__rtcp_ssrc", None)
    return ssrc
