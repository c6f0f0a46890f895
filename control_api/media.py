"""Builds and runs the media plane for ``relaycast serve``: bus, ingest manager, listeners."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from control_api.channels import StoreChannels
from control_api.media_library.files import MediaFiles
from control_api.media_library.recordings import LibraryRecordings
from control_api.settings import Settings
from control_api.store import Store
from control_api.store.directory import StoreDirectory
from control_api.urls import Endpoints
from control_api.workers import spread_from_environ
from server.bus import Registry
from server.hls.packager import HlsService
from server.ingest.manager import IngestManager
from server.ingest.ports import PublisherClaims, RefusalSink
from server.ingest.rtmp import RtmpIngestServer
from server.ingest.srt import SrtIngestServer
from server.playback import PlaybackService
from server.playout.service import PlayoutService
from server.push.manager import PushManager
from server.record.service import RecordService
from server.transcode.service import TranscodeService
from server.webrtc.service import WebRtcService

log = logging.getLogger("relaycast")


def recordings_root(settings: Settings) -> Path:
    """Where recordings are written while their sessions last. A named node has its
    own folder: nodes sharing a data directory (``--workers``) must not finish each
    other's recordings when one of them starts."""
    root = settings.server.data_dir / "recordings"
    return root / settings.node.name if settings.node.name else root


@dataclass
class MediaPlane:
    registry: Registry
    ingest: IngestManager
    rtmp: RtmpIngestServer
    hls: HlsService
    srt: SrtIngestServer
    push: PushManager
    record: RecordService
    recordings: LibraryRecordings
    playback: PlaybackService
    transcode: TranscodeService
    webrtc: WebRtcService
    playout: PlayoutService

    @classmethod
    def build(
        cls,
        settings: Settings,
        store: Store,
        playback_key: bytes,
        refusal_sinks: Sequence[RefusalSink] = (),
        claims: PublisherClaims | None = None,
    ) -> MediaPlane:
        """``playback_key`` signs the playback tokens of private streams; ``refusal_sinks``
        hear of every refused encoder; ``claims`` keep one publisher per stream across
        nodes."""
        registry = Registry()
        hls = HlsService(settings.hls, playback_key=playback_key)
        push = PushManager(store.destinations, settings.push)
        directory = StoreDirectory(
            store.sessions, settings.plans, store.events, settings.node.resolved_name()
        )
        recordings = LibraryRecordings(
            store, MediaFiles(settings.server.data_dir), settings.recording
        )
        record = RecordService(
            recordings_root(settings), settings.recording, recordings, segmenters=hls.live_segmenter
        )
        transcode = TranscodeService(settings.transcode, observers=(hls,))
        ingest = IngestManager(
            directory,
            registry,
            settings.ingest,
            observers=(hls, push, record, transcode),
            refusal_sinks=refusal_sinks,
            claims=claims,
        )
        playback = PlaybackService(hls, settings.playback, ingest.refusals, playback_key)
        ingest.observers.append(playback)
        rtmp = RtmpIngestServer(ingest, settings.rtmp)
        rtmp.playback = playback
        srt = SrtIngestServer(ingest, settings.srt)
        srt.playback = playback
        webrtc = WebRtcService(ingest, playback, settings.webrtc)
        channels = StoreChannels(
            store, directory, MediaFiles(settings.server.data_dir), settings.playout
        )
        playout = PlayoutService(channels, ingest, settings.playout)
        return cls(
            registry, ingest, rtmp, hls, srt, push, record, recordings, playback, transcode,
            webrtc, playout,
        )  # fmt: skip

    async def start(self, settings: Settings, endpoints: Endpoints) -> None:
        """Open the ingest listeners; record the real ports in the advertised URLs."""
        host, shared = settings.server.host, settings.server.reuse_port
        spread = spread_from_environ() if shared else None
        if spread is not None:
            spread.load = lambda: len(self.rtmp.connections) + len(self.srt.connections)
            self.rtmp.spread = spread
        if settings.rtmp.enabled:
            endpoints.rtmp_port = await self.rtmp.listen(host, settings.rtmp.port, None, shared)
            log.info("listening rtmp rtmp://%s:%d/%s", host, endpoints.rtmp_port, settings.rtmp.app)
        if settings.rtmps.enabled:
            assert settings.rtmps.cert is not None and settings.rtmps.key is not None
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(settings.rtmps.cert, settings.rtmps.key)
            endpoints.rtmps_port = await self.rtmp.listen(host, settings.rtmps.port, tls, shared)
            log.info(
                "listening rtmps rtmps://%s:%d/%s", host, endpoints.rtmps_port, settings.rtmp.app
            )
        if settings.srt.enabled:
            endpoints.srt_port = await self.srt.listen(host, settings.srt.port, shared)
            log.info("listening srt srt://%s:%d", host, endpoints.srt_port)

    async def stop(self) -> None:
        await self.playout.close()  # first: channels keep their "on" for the next start
        await self.webrtc.close()
        await self.rtmp.close()
        await self.srt.close()
        await self.ingest.shutdown()
        await self.push.shutdown()  # the sessions ended: pushers unpublish
        await self.record.close()  # ... and recordings hand their files over
        await self.playback.close()
        await self.transcode.close()  # workers stop; rendition streams end
        await self.hls.close()
