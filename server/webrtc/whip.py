"""One WHIP publisher: an aiortc peer whose received media goes onto the bus.

It is a ``Publisher`` of the ingest manager like an RTMP or SRT connection, so stream
keys, takeover, the reconnect window, HLS, recording and destinations apply unchanged.
RTP is taken from aiortc right after SRTP (``RtpTap``). H.264 goes through as it
arrived (depacketized, never decoded); Opus is transcoded once to AAC in a worker
process, and also handed as it is to WHEP viewers of the same stream (``OpusHub``),
who need no transcoding at all.

Timing: each track's RTP clock starts at 0 on its first frame. Both tracks are anchored at
the arrival time of their first frame on one session clock, which keeps them in sync to
within the network's jitter without waiting for RTCP.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from server.ingest.manager import Claim
from server.media.errors import MediaFormatError
from server.media.frame import TIMEBASE, CodecConfig, Frame, TrackKind
from server.media.rtp_h264 import AccessUnit, Bounds
from server.webrtc.audio import OPUS_RATE, OpusTranscoder
from server.webrtc.h264 import AnnexBVideo
from server.webrtc.peer import (
    accept_offer,
    add_transceiver,
    check_offer,
)
from server.webrtc.rtp_tap import RtpTap
from server.webrtc.session import PeerSession

if TYPE_CHECKING:
    from server.webrtc.service import WebRtcService

log = logging.getLogger("relaycast.webrtc")

SUPERVISE_EVERY = 0.25
"""Seconds between checks of the connect, idle and keyframe deadlines."""


class WhipSession(PeerSession):
    """Implements ``server.ingest.ports.Publisher``."""

    protocol = "whip"
    kind = "whip"

    def __init__(self, service: WebRtcService, session_id: str, remote: str) -> None:
        super().__init__(service, session_id, remote)
        self.claim: Claim | None = None
        self.video = AnnexBVideo()
        settings = service.settings
        self.transcoder = OpusTranscoder(settings.audio_queue_bytes)
        self.last_media = self.started
        self.last_keyframe = self.started
        self.last_pli = 0.0
        self.bad_frames = 0
        self._origin: float | None = None
        self._anchors: dict[TrackKind, int] = {}
        self._rtp: RtpTap | None = None

    # ------------------------------------------------------------ negotiation

    async def negotiate(self, offer: str, stream_key: str) -> str:
        """Claim the stream and answer the offer; raises ``BadOffer`` or ``Refused``
        (nothing is left open then)."""
        kinds = check_offer(offer, "send")
        return await self._negotiate(lambda: self._publish(offer, stream_key, kinds))

    async def _publish(self, offer: str, stream_key: str, kinds: frozenset[str]) -> None:
        # video first, as offers usually are: aiortc matches m-lines to transceivers in order
        video = add_transceiver(self.pc, "video", "recvonly")
        audio = add_transceiver(self.pc, "audio", "recvonly") if "audio" in kinds else None
        await accept_offer(self.pc, offer)
        settings = self.service.settings
        self._rtp = RtpTap(
            video,
            audio,
            Bounds(settings.reorder_packets, settings.reorder_wait),
            settings.publish_max_bitrate,
            (self._access_unit, self._opus),
            self.loop.time,
        )
        self._rtp.install()
        self.claim = await self.service.manager.claim(stream_key, self, "whip")
        self.log.bind(self.claim.live.grant.stream_id, self.claim.live.session_id)
        tracks = {TrackKind.VIDEO} | ({TrackKind.AUDIO} if "audio" in kinds else set())
        self.claim.tracks(frozenset(tracks))
        if "audio" in kinds:
            await self.transcoder.start(self._aac_config, self._aac_frame)

    # ------------------------------------------------------------ media

    def _pts(self, track: TrackKind, rtp_ticks: int) -> int:
        """Session ticks of a frame: its track's anchor plus its own RTP clock."""
        anchor = self._anchors.get(track)
        if anchor is None:
            now = self.loop.time()
            if self._origin is None:
                self._origin = now
            anchor = self._anchors[track] = round((now - self._origin) * TIMEBASE) - rtp_ticks
        return anchor + rtp_ticks

    def _access_unit(self, unit: AccessUnit) -> None:
        claim = self.claim
        if claim is None:
            return
        now = self.loop.time()
        self.last_media = now
        claim.received(sum(map(len, unit.nals)), now)
        try:
            items = self.video.nals(unit.nals, self._pts(TrackKind.VIDEO, unit.timestamp))
        except MediaFormatError:
            self.bad_frames += 1
            return
        for item in items:
            if isinstance(item, CodecConfig):
                claim.config(item)
            else:
                if item.keyframe:
                    self.last_keyframe = now
                claim.frame(item)

    def _opus(self, ticks: int, packet: bytes) -> None:
        claim = self.claim
        if claim is None:
            return
        now = self.loop.time()
        self.last_media = now
        claim.received(len(packet), now)
        pts = self._pts(TrackKind.AUDIO, ticks * TIMEBASE // OPUS_RATE)
        self.transcoder.submit(pts, packet)
        self.service.opus.publish(claim.live.grant.stream_id, pts, packet)

    def _aac_config(self, config: CodecConfig) -> None:
        if self.claim is not None:
            self.claim.config(config)

    def _aac_frame(self, frame: Frame) -> None:
        if self.claim is not None:
            self.claim.frame(frame)

    # ------------------------------------------------------------ lifetime

    def _connected(self) -> None:
        self.last_media = self.loop.time()
        if self._rtp is not None:
            self._rtp.skip_stun_parsing()

    async def _supervise(self) -> None:
        """Deadlines no peer event reports: ICE that never completes, a publisher gone
        silent (a killed tab sends no goodbye), and keyframes the bus needs."""
        settings = self.service.settings
        while True:
            await asyncio.sleep(SUPERVISE_EVERY)
            now = self.loop.time()
            if not self.connected:
                if now - self.started > settings.connect_timeout:
                    self.close(f"not connected within {settings.connect_timeout:g} s")
                    return
                continue
            if now - self.last_media > settings.idle_timeout:
                self.close(f"no media for {settings.idle_timeout:g} s")
                return
            if self._rtp is None:
                continue
            self._rtp.report_due(now)
            due = settings.keyframe_interval
            if now - self.last_keyframe > due and now - self.last_pli > due:
                self.last_pli = now
                self._rtp.request_keyframe()

    async def _release(self, reason: str) -> None:
        if self.claim is not None:
            self.service.manager.release(self.claim, reason)
            self.claim = None
        await self.transcoder.stop()
