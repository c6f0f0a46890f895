"""What a late joiner starts from: the configs, then the GOP since the latest keyframe.

Markers published mid-GOP are kept in place, so a joiner replays them in order; the
configs are snapshotted when the GOP starts. Audio-only streams have no keyframes to
start at, so they keep a short sliding window instead.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from server.media.frame import CodecConfig, Frame, TrackKind

from .items import ConfigChange, Marker, MetadataChange, StreamItem
from .limits import StreamLimits

_TRACK_ORDER = (TrackKind.VIDEO, TrackKind.AUDIO, TrackKind.DATA)
_VIDEO = TrackKind.VIDEO


class GopCache:
    """Bounded cache of the items a late joiner needs; owned by one ``Stream``."""

    __slots__ = (
        "_base_configs",
        "_base_metadata",
        "_bytes",
        "_items",
        "_limits",
        "_max_bytes",
        "_max_items",
        "_valid",
        "_video",
    )

    def __init__(self, limits: StreamLimits) -> None:
        self._limits = limits
        self._max_items = limits.gop_max_frames
        self._max_bytes = limits.gop_max_bytes
        self._items: deque[StreamItem] = deque()
        self._bytes = 0
        self._base_configs: dict[TrackKind, CodecConfig] = {}
        self._base_metadata: MetadataChange | None = None
        self._video = False  # the stream has video: cache from keyframes
        self._valid = False  # video mode: the items start at a keyframe

    @property
    def has_video(self) -> bool:
        """True once the stream carried a video config or frame (keyframe-based caching)."""
        return self._video

    @property
    def items(self) -> int:
        """Frames and markers currently cached."""
        return len(self._items)

    @property
    def bytes(self) -> int:
        """Payload bytes currently cached."""
        return self._bytes

    def _reset(self, configs: Mapping[TrackKind, CodecConfig], meta: MetadataChange | None) -> None:
        self._items.clear()
        self._bytes = 0
        self._base_configs = dict(configs)
        self._base_metadata = meta

    def _enter_video_mode(self) -> None:
        self._video = True
        self._valid = False
        self._items.clear()
        self._bytes = 0

    def add_frame(
        self, frame: Frame, configs: Mapping[TrackKind, CodecConfig], meta: MetadataChange | None
    ) -> None:
        """Account for a published frame (configs/meta: the stream's current state)."""
        if frame.track is _VIDEO:
            if frame.keyframe:
                self._reset(configs, meta)
                self._video = self._valid = True
            elif not self._video:
                self._enter_video_mode()
        if self._video:
            if self._valid:
                items = self._items
                items.append(frame)
                self._bytes += len(frame.payload)
                if len(items) > self._max_items or self._bytes > self._max_bytes:
                    self._invalidate()  # a GOP too long to cache: joiners wait for the next
            return
        if not self._items:
            self._reset(configs, meta)
        self._items.append(frame)
        self._bytes += len(frame.payload)
        self._trim_audio_window(frame.dts)

    def _invalidate(self) -> None:
        self._valid = False
        self._items.clear()
        self._bytes = 0

    def add_marker(self, marker: Marker) -> None:
        """Keep a marker in place so joiners replay it in order."""
        video_config = isinstance(marker, ConfigChange) and marker.config.track is TrackKind.VIDEO
        if video_config and not self._video:
            self._enter_video_mode()
            return
        if not self._items:
            return  # the next snapshot of the stream's state already includes it
        self._items.append(marker)
        if self._video and len(self._items) > self._max_items:
            self._invalidate()
        elif not self._video:
            self._trim_audio_window(None)

    def _trim_audio_window(self, newest_dts: int | None) -> None:
        items, limits = self._items, self._limits
        while items:
            head = items[0]
            if isinstance(head, Frame):
                fresh = newest_dts is None or newest_dts - head.dts <= limits.audio_window_ticks
                if len(items) <= limits.audio_window_frames and fresh:
                    break
                self._bytes -= len(head.payload)
            elif isinstance(head, ConfigChange):
                self._base_configs[head.config.track] = head.config
            elif isinstance(head, MetadataChange):
                self._base_metadata = head
            items.popleft()

    def snapshot(
        self,
        configs: Mapping[TrackKind, CodecConfig],
        meta: MetadataChange | None,
        *,
        with_items: bool = True,
    ) -> tuple[list[StreamItem], bool]:
        """(items for a new reader, whether it must wait for the next video keyframe).

        ``with_items=False`` gives just the current state, for a reader too small to take
        the cached GOP: it then starts at the next keyframe (or, audio-only, right away).
        """
        have_items = with_items and bool(self._items) and (self._valid or not self._video)
        base_configs = self._base_configs if have_items else configs
        base_meta = self._base_metadata if have_items else meta
        out: list[StreamItem] = [
            ConfigChange(base_configs[t]) for t in _TRACK_ORDER if t in base_configs
        ]
        if base_meta is not None:
            out.append(base_meta)
        if have_items:
            out.extend(self._items)
        return out, self._video and not have_items
