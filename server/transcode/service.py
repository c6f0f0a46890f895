"""The transcoder of the media plane: a ``StreamObserver`` that gives each session of a
stream with ``quality`` standard or high its renditions.

Transcoding is never in ingest's way: the source is published, packaged, pushed and
recorded as it is whatever happens here. A stream that cannot be transcoded (no
capacity left, an encoder that fails or falls behind, a worker that keeps dying) stays
passthrough, with a warning in its health and a count in the metrics.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from server.bus import (
    ConfigChange,
    EndOfStream,
    Reader,
    Registry,
    Stream,
    StreamGrant,
    TracksAnnounced,
)
from server.encode import encoder_available
from server.media.frame import TIMEBASE, CodecConfig, Frame, TrackKind
from server.settings import TranscodeSettings
from server.tasks import BackgroundTasks

from .ladder import PASSTHROUGH, ladder_for, select
from .ports import RenditionObserver
from .transcoder import RenditionStats, Transcoder, stream_key

log = logging.getLogger("relaycast.transcode")

AUDIO_WAIT = TIMEBASE
"""Media time after the first keyframe the worker waits for an announced audio track's
configuration before it starts without audio."""


class EncoderUnavailable(Exception):
    """``transcode.encoder`` names an encoder the local FFmpeg cannot open."""


def check_encoder(settings: TranscodeSettings) -> None:
    """Refuse to start with an encoder the local FFmpeg lacks (one clear line now,
    rather than every stream silently left passthrough later)."""
    if not encoder_available(settings.encoder):
        raise EncoderUnavailable(
            f"invalid setting transcode.encoder: {settings.encoder!r} is not an "
            "H.264 encoder the local FFmpeg can open"
        )


@dataclass(frozen=True, slots=True)
class TranscodeHealth:
    renditions: tuple[RenditionStats, ...]
    warnings: tuple[str, ...]


class TranscodeService:
    def __init__(
        self, settings: TranscodeSettings, observers: tuple[RenditionObserver, ...] = ()
    ) -> None:
        self.settings = settings
        self.observers: list[RenditionObserver] = list(observers)
        self.registry = Registry()  # rendition bus streams, "<streamId>/<rung>"
        self.fallbacks: Counter[str] = Counter()  # reason -> streams left passthrough
        self._active: dict[str, Transcoder] = {}
        self._warnings: dict[str, str] = {}
        self._tasks = BackgroundTasks(log, "transcoding failed")

    # ------------------------------------------------------------ StreamObserver

    def stream_opened(self, grant: StreamGrant, stream: Stream, session_id: str) -> None:
        """A session opened: transcode it if its quality asks for renditions."""
        self._warnings.pop(grant.stream_id, None)
        if grant.quality == PASSTHROUGH or not ladder_for(self.settings.ladders, grant.quality):
            return
        reader = stream.reader("transcode", "transcode", max_frames=self.settings.queue_max_frames)
        self._tasks.spawn(self._transcode(grant, reader))

    async def _transcode(self, grant: StreamGrant, reader: Reader) -> None:
        stream_id = grant.stream_id
        try:
            video, audio = await _source_configs(reader)
            if video is None:
                return
            rungs = ladder_for(self.settings.ladders, grant.quality)
            renditions = tuple(select(rungs, video.width, video.height, video.fps))
            if not renditions:
                return  # a source no taller than any rung: the source is the only rendition
            if len(self._active) >= self.settings.streams_limit():
                self._fall_back(
                    stream_id,
                    "capacity",
                    f"transcoding capacity reached (transcode.max_streams = "
                    f"{self.settings.streams_limit()})",
                )
                return
            transcoder = Transcoder(
                stream_id, reader, renditions, self.registry, self.settings, self.observers
            )
            self._active[stream_id] = transcoder
            try:
                await transcoder.run(video, audio)
            finally:
                del self._active[stream_id]
            if transcoder.failure is not None:
                self._fall_back(stream_id, "failure", transcoder.failure)
        finally:
            reader.close()

    def _fall_back(self, stream_id: str, reason: str, text: str) -> None:
        self.fallbacks[reason] += 1
        self._warnings[stream_id] = f"renditions unavailable, playing the source only: {text}"
        log.warning("stream %s: %s; passthrough", stream_id, text)

    # ------------------------------------------------------------ queries

    def health(self, stream_id: str) -> TranscodeHealth:
        transcoder = self._active.get(stream_id)
        warning = self._warnings.get(stream_id)
        return TranscodeHealth(
            renditions=tuple(transcoder.stats()) if transcoder is not None else (),
            warnings=(warning,) if warning else (),
        )

    def rendition_stream(self, stream_id: str, name: str) -> Stream | None:
        """The live bus stream of one rendition (for a destination that pushes it)."""
        return self.registry.get(stream_key(stream_id, name))

    def transcoders(self) -> dict[str, Transcoder]:
        return dict(self._active)

    async def close(self) -> None:
        await self._tasks.close()


async def _source_configs(reader: Reader) -> tuple[CodecConfig | None, CodecConfig | None]:
    """The source's video and audio configurations, read up to its first keyframe (and
    a little further when audio was announced but has no configuration yet)."""
    video: CodecConfig | None = None
    audio: CodecConfig | None = None
    audio_announced = False
    key_at: int | None = None
    while True:
        item = await reader.next()
        if isinstance(item, EndOfStream):
            return None, None
        if isinstance(item, TracksAnnounced):
            audio_announced = TrackKind.AUDIO in item.tracks
        elif isinstance(item, ConfigChange):
            if item.config.track is TrackKind.VIDEO:
                video = item.config
            elif item.config.track is TrackKind.AUDIO:
                audio = item.config
        elif isinstance(item, Frame) and video is not None:
            if key_at is None and item.track is TrackKind.VIDEO and item.keyframe:
                key_at = item.dts
            if key_at is not None and (
                audio is not None or not audio_announced or item.dts - key_at > AUDIO_WAIT
            ):
                return video, audio
