"""One live stream: current codec configs, metadata, the GOP cache and its readers.

``publish`` runs on the event loop thread inside the ingest read callback and must cost
O(readers) appends, so it never awaits, never logs, and never looks at a reader's pace.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from server.media.frame import CodecConfig, Frame, TrackKind

from .errors import StreamEndedError
from .gop import GopCache
from .items import (
    ConfigChange,
    Discontinuity,
    EndOfStream,
    Marker,
    MetadataChange,
    StreamItem,
    TracksAnnounced,
)
from .limits import MIN_READER_FRAMES, StreamLimits
from .reader import Reader, ReaderStats


def _fits(snapshot: list[StreamItem], max_items: int, max_bytes: int) -> bool:
    """A joiner's snapshot may fill at most 3/4 of its ring, leaving room to keep up."""
    if len(snapshot) * 4 > max_items * 3:
        return False
    size = sum(len(i.payload) for i in snapshot if isinstance(i, Frame))
    return size * 4 <= max_bytes * 3


@dataclass(frozen=True, slots=True)
class StreamStats:
    """A point-in-time snapshot of one stream (for the API and metrics)."""

    stream_id: str
    frames_published: int
    bytes_published: int
    discontinuities: int
    gop_items: int
    gop_bytes: int
    ended: bool
    readers: tuple[ReaderStats, ...]


class Stream:
    """Fan-out point of one live stream; create through ``Registry.create``."""

    __slots__ = (
        "_bytes",
        "_configs",
        "_discontinuities",
        "_end",
        "_frames",
        "_gop",
        "_metadata",
        "_readers",
        "_tracks",
        "limits",
        "stream_id",
    )

    def __init__(self, stream_id: str, limits: StreamLimits | None = None) -> None:
        self.stream_id = stream_id
        self.limits = limits or StreamLimits()
        self._configs: dict[TrackKind, CodecConfig] = {}
        self._metadata: MetadataChange | None = None
        self._tracks: TracksAnnounced | None = None
        self._gop = GopCache(self.limits)
        self._readers: list[Reader] = []
        self._end: EndOfStream | None = None
        self._frames = 0
        self._bytes = 0
        self._discontinuities = 0

    # ------------------------------------------------------------------ state

    @property
    def video_config(self) -> CodecConfig | None:
        """Current video configuration, if any."""
        return self._configs.get(TrackKind.VIDEO)

    @property
    def audio_config(self) -> CodecConfig | None:
        """Current audio configuration, if any."""
        return self._configs.get(TrackKind.AUDIO)

    @property
    def metadata(self) -> Mapping[str, object]:
        """Current publisher metadata (read-only)."""
        return self._metadata.metadata if self._metadata is not None else MappingProxyType({})

    @property
    def ended(self) -> bool:
        """True after ``end()``."""
        return self._end is not None

    @property
    def readers(self) -> tuple[Reader, ...]:
        """Attached readers."""
        return tuple(self._readers)

    # ------------------------------------------------------------------ publisher side

    def publish(self, frame: Frame) -> None:
        """Hand a frame to every reader and the GOP cache; synchronous, never waits."""
        if self._end is not None:
            raise StreamEndedError(f"stream {self.stream_id!r} has ended")
        size = len(frame.payload)
        self._frames += 1
        self._bytes += size
        self._gop.add_frame(frame, self._configs, self._metadata)
        for reader in self._readers:
            reader.offer_frame(frame, size)

    def _send_marker(self, marker: Marker) -> None:
        if self._end is not None:
            raise StreamEndedError(f"stream {self.stream_id!r} has ended")
        self._gop.add_marker(marker)
        for reader in self._readers:
            reader.offer_marker(marker)

    def set_config(self, config: CodecConfig) -> bool:
        """Make ``config`` current for its track; readers get it in band, before the next frame.

        Returns False (and sends nothing) when it equals the current one, since encoders
        resend identical sequence headers.
        """
        if self._configs.get(config.track) == config:
            return False
        self._configs[config.track] = config
        self._send_marker(ConfigChange(config))
        return True

    def set_metadata(self, metadata: Mapping[str, object]) -> bool:
        """Replace the publisher metadata (e.g. onMetaData); deduplicated like configs."""
        if self._metadata is not None and dict(self._metadata.metadata) == dict(metadata):
            return False
        self._metadata = MetadataChange(MappingProxyType(dict(metadata)))
        self._send_marker(self._metadata)
        return True

    def announce_tracks(self, tracks: frozenset[TrackKind]) -> bool:
        """The source says it will send ``tracks``; deduplicated (a PMT repeats)."""
        if self._tracks is not None and self._tracks.tracks == tracks:
            return False
        self._tracks = TracksAnnounced(tracks)
        self._send_marker(self._tracks)
        return True

    def mark_discontinuity(self) -> None:
        """The publisher came back inside the reconnect window: timestamps may restart."""
        self._discontinuities += 1
        self._send_marker(Discontinuity())

    def end(self, reason: str = "") -> None:
        """Deliver an end marker to every reader; later publishes raise. Idempotent."""
        if self._end is not None:
            return
        self._end = EndOfStream(reason)
        for reader in list(self._readers):
            reader.offer_marker(self._end)

    # ------------------------------------------------------------------ readers

    def reader(
        self,
        name: str,
        kind: str = "",
        *,
        max_frames: int | None = None,
        max_bytes: int | None = None,
    ) -> Reader:
        """Attach a reader that starts with the configs, then the latest GOP.

        ``kind`` labels the consumer ("hls", "push", "record") in stats. ``max_frames``
        bounds queued items (frames and markers), ``max_bytes`` queued payload bytes.
        """
        items = max_frames if max_frames is not None else self.limits.reader_max_frames
        size = max_bytes if max_bytes is not None else self.limits.reader_max_bytes
        if items < MIN_READER_FRAMES or size <= 0:
            raise ValueError(f"max_frames must be >= {MIN_READER_FRAMES}, max_bytes positive")
        reader = Reader(
            name,
            kind,
            max_items=items,
            max_bytes=size,
            detach=self._detach,
            has_video=self._has_video,
        )
        if self._end is not None:
            reader.offer_marker(self._end)
            return reader
        snapshot, wait = self._gop.snapshot(self._configs, self._metadata)
        if not _fits(snapshot, items, size):
            snapshot, wait = self._gop.snapshot(self._configs, self._metadata, with_items=False)
        if self._tracks is not None:  # stream-wide state, not tied to the cached GOP
            snapshot.insert(0, self._tracks)
        reader.start(snapshot, wait_for_keyframe=wait)
        self._readers.append(reader)
        return reader

    def _has_video(self) -> bool:
        return self._gop.has_video

    def _detach(self, reader: Reader) -> None:
        if reader in self._readers:
            self._readers.remove(reader)

    def stats(self) -> StreamStats:
        """Snapshot of the stream and its readers."""
        return StreamStats(
            stream_id=self.stream_id,
            frames_published=self._frames,
            bytes_published=self._bytes,
            discontinuities=self._discontinuities,
            gop_items=self._gop.items,
            gop_bytes=self._gop.bytes,
            ended=self._end is not None,
            readers=tuple(r.stats() for r in self._readers),
        )
