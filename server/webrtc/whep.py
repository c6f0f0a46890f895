"""One WHEP viewer: a bus reader played to a browser over an aiortc peer.

Video is the bus's H.264 handed to aiortc as encoded packets (its pass-through path
packetizes them; nothing is decoded or encoded). Audio is the publisher's own Opus
when the stream comes from WHIP (``OpusHub``); an RTMP/SRT stream's AAC is not sent,
so such a stream plays over WHEP as video only (see the README: transcoding AAC to
Opus per stream would cost a worker per stream for a use the HLS player covers).

A viewer joins at the bus's latest keyframe. The cached frames from it up to now come
at once; they are stamped a tick apart, ending at the newest one, so the browser
decodes them all and shows the newest at once, instead of playing them out at their
own pace and staying that far behind for the rest of the session.
"""

from __future__ import annotations

import asyncio
import logging
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from server.bus import ConfigChange, EndOfStream, Reader
from server.media.frame import TIMEBASE, Codec, Frame, TrackKind
from server.playback import PlayTicket
from server.webrtc.audio import OPUS_RATE
from server.webrtc.h264 import frame_to_annexb, parameter_sets_annexb
from server.webrtc.peer import (
    accept_offer,
    add_transceiver,
    check_offer,
    receiver_report_stamp,
)
from server.webrtc.session import PeerSession

if TYPE_CHECKING:
    from server.webrtc.service import WebRtcService

log = logging.getLogger("relaycast.webrtc")
# How often a viewer's receiver reports are looked at (browsers send about one a second).
REPORTS_EVERY = 1.0

_VIDEO_BASE = Fraction(1, TIMEBASE)
_AUDIO_BASE = Fraction(1, OPUS_RATE)


def _packet(payload: bytes, pts: int, time_base: Fraction) -> av.Packet[Any]:
    packet = av.Packet(payload)
    packet.pts = pts
    packet.time_base = time_base
    return packet


class BusVideoTrack(MediaStreamTrack):
    """H.264 frames of a bus reader as Annex B packets (SPS/PPS before keyframes)."""

    kind = "video"

    def __init__(self, reader: Reader) -> None:
        super().__init__()
        self.reader = reader
        self._sets = b""
        self._pending: list[av.Packet[Any]] = []
        self._joined = False

    async def recv(self) -> av.Packet[Any]:
        if not self._joined:
            self._joined = True
            self._pending = self._catch_up()
        if self._pending:
            return self._pending.pop(0)
        while True:
            item = await self.reader.next()
            packet = self._handle(item)
            if packet is not None:
                return packet

    def _catch_up(self) -> list[av.Packet[Any]]:
        """What the reader holds at once (the cached GOP), squeezed to end at its newest."""
        frames: list[tuple[Frame, bytes]] = []
        while (item := self.reader.next_nowait()) is not None:
            if isinstance(item, EndOfStream):
                break
            if isinstance(item, Frame):
                if item.track is TrackKind.VIDEO and self._sets:
                    frames.append((item, frame_to_annexb(item, self._sets)))
            else:
                self._handle(item)
        if not frames:
            return []
        newest = frames[-1][0].pts
        last = len(frames) - 1
        return [
            _packet(data, newest - (last - n), _VIDEO_BASE) for n, (_, data) in enumerate(frames)
        ]

    def _handle(self, item: object) -> av.Packet[Any] | None:
        if isinstance(item, EndOfStream):
            self.stop()
            raise MediaStreamError
        if isinstance(item, ConfigChange):
            config = item.config
            if config.track is TrackKind.VIDEO:
                self._sets = parameter_sets_annexb(config) if config.codec == Codec.H264 else b""
            return None
        if not isinstance(item, Frame) or item.track is not TrackKind.VIDEO or not self._sets:
            return None
        return _packet(frame_to_annexb(item, self._sets), item.pts, _VIDEO_BASE)


class OpusTrack(MediaStreamTrack):
    """The WHIP publisher's Opus packets, through a bounded queue (newest dropped)."""

    kind = "audio"

    def __init__(self, max_packets: int) -> None:
        super().__init__()
        self._queue: asyncio.Queue[av.Packet[Any] | None] = asyncio.Queue(max_packets)
        self.dropped = 0

    def push(self, pts: int, payload: bytes) -> None:
        if self._queue.full():
            self.dropped += 1
            return
        self._queue.put_nowait(_packet(payload, pts * OPUS_RATE // TIMEBASE, _AUDIO_BASE))

    def end(self) -> None:
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    async def recv(self) -> av.Packet[Any]:
        packet = await self._queue.get()
        if packet is None:
            self.stop()
            raise MediaStreamError
        return packet


class WhepSession(PeerSession):
    """One viewer; counted (and bounded by maxClients) through its ``PlayTicket``."""

    kind = "whep"

    def __init__(self, service: WebRtcService, session_id: str, remote: str) -> None:
        super().__init__(service, session_id, remote)
        self.ticket: PlayTicket | None = None
        self.audio: OpusTrack | None = None

    async def negotiate(self, offer: str, edge_id: str, token: str) -> str:
        """Admit the viewer and answer; raises ``BadOffer`` or ``PlayRefused``."""
        kinds = check_offer(offer, "recv")
        return await self._negotiate(lambda: self._watch(offer, edge_id, token, kinds))

    async def _watch(self, offer: str, edge_id: str, token: str, kinds: frozenset[str]) -> None:
        ticket = self.service.playback.open("webrtc", edge_id, token, self.remote)
        self.ticket = ticket
        self.log.bind(ticket.grant.stream_id)
        video = BusVideoTrack(ticket.own_reader())
        video.on("ended", lambda: self.close("stream ended"))
        add_transceiver(self.pc, "video", "sendonly", video)
        stream_id = ticket.grant.stream_id
        if "audio" in kinds and self.service.sends_opus(stream_id):
            self.audio = OpusTrack(self.service.settings.queue_max_frames)
            add_transceiver(self.pc, "audio", "sendonly", self.audio)
            self.service.opus.subscribe(stream_id, self.audio.push)
        await accept_offer(self.pc, offer)

    async def _supervise(self) -> None:
        """ICE that never completes, and a viewer gone without a goodbye (a closed tab
        sends no DTLS close and ICE consent takes ~30 s to expire, all the while counted
        against maxClients): its receiver reports stop."""
        settings = self.service.settings
        await asyncio.sleep(settings.connect_timeout)
        if not self.connected:
            self.close(f"not connected within {settings.connect_timeout:g} s")
            return
        stamp, heard = None, self.loop.time()
        while True:
            await asyncio.sleep(REPORTS_EVERY)
            latest = await receiver_report_stamp(self.pc)
            now = self.loop.time()
            if latest != stamp:
                stamp, heard = latest, now
            elif now - heard > settings.idle_timeout:
                self.close(f"no receiver reports for {settings.idle_timeout:g} s")
                return

    async def _release(self, reason: str) -> None:
        if self.ticket is not None:
            if self.audio is not None:
                self.service.opus.unsubscribe(self.ticket.grant.stream_id, self.audio.push)
                self.audio.end()
            self.ticket.close()
