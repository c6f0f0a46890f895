"""Bus items → fragmented MP4 bytes for a recording (pure: no I/O, no clock).

Used where the live HLS packager's output cannot simply be copied (see ``recording``):
TS segments, no LL-HLS parts, codecs HLS leaves out (AV1, Opus), later configurations.

One file per codec configuration: the first main-track keyframe opens it (init
segment), then about every ``fragment_ticks`` a ``moof``+``mdat`` follows, cut at a
main-track keyframe (or forced at twice that, for long GOPs), so a crash loses at
most one fragment. A reconnect inside the window (``Discontinuity``) continues the
same file: the new encoder's timestamps are rebased to follow on from the last frame,
starting at its first keyframe. A codec or resolution change starts a new file (a new
``NewFile``), since one ``moov`` describes one configuration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from server.bus.items import BusItem, ConfigChange, Discontinuity, EndOfStream, TracksAnnounced
from server.media.fmp4 import FILE_CODECS, Fmp4Muxer
from server.media.frame import TIMEBASE, CodecConfig, Frame, TrackKind

_MEDIA = (TrackKind.VIDEO, TrackKind.AUDIO)


@dataclass(frozen=True, slots=True)
class NewFile:
    """Start a new file with this init segment (ftyp + moov)."""

    init: bytes


Fragment = tuple[bytes, ...]  # one moof+mdat, as pieces to write in order (writev)
Output = NewFile | Fragment


def recordable(configs: dict[TrackKind, CodecConfig]) -> tuple[CodecConfig, ...]:
    """The configs a recording carries: video (H.264, H.265, AV1) and audio (AAC, Opus)
    as they came in, video first."""
    chosen = [c for k, c in configs.items() if k in _MEDIA and c.codec in FILE_CODECS]
    return tuple(sorted(chosen, key=lambda c: c.track is not TrackKind.VIDEO))


class RecordMuxer:
    def __init__(self, fragment_ticks: int, track_wait_ticks: int) -> None:
        self._fragment = fragment_ticks
        self._track_wait = track_wait_ticks
        self._configs: dict[TrackKind, CodecConfig] = {}
        self._announced: frozenset[TrackKind] = frozenset()
        self._muxer: Fmp4Muxer | None = None
        self._file_configs: tuple[CodecConfig, ...] = ()
        self._main = TrackKind.VIDEO
        self._pending: dict[TrackKind, list[Frame]] = {}
        self._offset = 0
        self._rebase = True
        self._continue_at = 0
        self._last: dict[TrackKind, int] = {}  # media time of each track's last frame
        self._step = TIMEBASE // 30  # the main track's frame interval, for continuing
        self._fragment_start: int | None = None
        self._held: list[Frame] = []
        self._waited = False
        self.files = 0
        self.dropped = 0

    def feed(self, item: BusItem) -> Sequence[Output]:
        if isinstance(item, Frame):
            return self._frame(item)
        if isinstance(item, ConfigChange):
            return self._config(item.config)
        if isinstance(item, TracksAnnounced):
            self._announced = item.tracks & frozenset(_MEDIA)
        elif isinstance(item, Discontinuity):
            return self._discontinuity()
        elif isinstance(item, EndOfStream):
            return self._release() + self._flush(None)
        return []

    # ------------------------------------------------------------ markers

    def _config(self, config: CodecConfig) -> list[Output]:
        if self._configs.get(config.track) == config:
            return []
        self._configs[config.track] = config
        if self._muxer is None or recordable(self._configs) == self._file_configs:
            return []
        out = self._flush(None)
        self._muxer = None  # the next main keyframe opens a new file on a fresh timeline
        self._rebase, self._continue_at, self._last = True, 0, {}
        return out

    def _discontinuity(self) -> list[Output]:
        out = self._flush(None)
        last = self._last.get(self._main)
        if last is not None:
            self._continue_at = last + self._step
            self._rebase = True
        return out

    # ------------------------------------------------------------ frames

    def _frame(self, frame: Frame) -> Sequence[Output]:
        muxer = self._muxer
        if muxer is None and self._held:
            return self._hold(frame)
        track = frame.track
        config = self._configs.get(track)
        if config is None or config.codec != frame.codec or track not in _MEDIA:
            if track is not TrackKind.DATA:
                self.dropped += 1
            return ()
        if muxer is None:
            out: list[Output] = []
            if not self._open(frame, out):
                return out
            return [*out, *self._add(frame)]
        return self._add(frame)

    def _hold(self, frame: Frame) -> list[Output]:
        """Frames from the first keyframe on wait (bounded) for the announced tracks'
        configurations, then go into the file in order: a late audio config does not
        cost the first GOP."""
        self._held.append(frame)
        first = self._held[0]
        if self._missing() and frame.dts - first.dts < self._track_wait:
            return []
        return self._release()

    def _release(self) -> list[Output]:
        """Record the held frames (the tracks came, the wait is over, or the end came)."""
        held, self._held = self._held, []
        out: list[Output] = []
        for frame in held:
            out += self._frame(frame)
        return out

    def _missing(self) -> frozenset[TrackKind]:
        return self._announced - {c.track for c in recordable(self._configs)}

    def _add(self, frame: Frame) -> Sequence[Output]:
        """Every recorded frame comes through here: nothing is allocated unless a
        fragment is cut (an empty tuple is returned)."""
        assert self._muxer is not None
        track = frame.track
        main = track is self._main
        if self._rebase:
            if not (main and (frame.keyframe or track is TrackKind.AUDIO)):
                self.dropped += 1
                return ()
            self._offset = self._continue_at - frame.dts
            self._rebase = False
        media = frame.dts + self._offset
        last = self._last.get(track)
        pending = self._pending.get(track)
        if pending is None or media < 0 or (last is not None and media <= last):
            self.dropped += 1
            return ()
        out: Sequence[Output] = ()
        if main:
            if last is not None and 0 < media - last <= TIMEBASE:
                self._step = media - last
            start = self._fragment_start
            if start is not None and self._cut(media - start, frame):
                out = self._flush(frame.dts)
                pending = self._pending[track]  # the flush started new lists
            if self._fragment_start is None:
                self._fragment_start = media
        self._last[track] = media
        pending.append(frame)
        return out

    def _starts(self, frame: Frame) -> bool:
        return frame.keyframe or frame.track is TrackKind.AUDIO

    def _cut(self, elapsed: int, frame: Frame) -> bool:
        fragment = self._fragment
        return elapsed >= fragment and (elapsed >= 2 * fragment or self._starts(frame))

    def _open(self, frame: Frame, out: list[Output]) -> bool:
        """Open a file at a main-track keyframe once the announced tracks are known
        (or waited for long enough)."""
        wanted = recordable(self._configs)
        if not wanted:
            self.dropped += 1
            return False
        self._main = wanted[0].track
        if frame.track is not self._main or not self._starts(frame):
            self.dropped += 1
            return False
        if self._missing() and not self._waited:
            self._held.append(frame)
            self._waited = True  # once: a track that never comes is not waited for again
            return False
        try:
            self._muxer = Fmp4Muxer(wanted)
            init = self._muxer.init_segment()
        except ValueError:  # a configuration record no muxer can use: wait for another
            self._muxer = None
            return False
        self._file_configs = wanted
        self._pending = {c.track: [] for c in wanted}
        self._rebase, self._last, self._fragment_start = True, {}, None
        self.files += 1
        out.append(NewFile(init))
        return True

    def _flush(self, end_dts: int | None) -> list[Output]:
        """The pending frames as one fragment; ``end_dts`` = raw dts of the main
        frame that follows (fixes the last sample's duration exactly)."""
        self._fragment_start = None
        if self._muxer is None or not any(self._pending.values()):
            return []
        ends = {self._main: end_dts} if end_dts is not None else None
        pieces = self._muxer.fragment_pieces(self._pending, end_dts=ends, offset=self._offset)
        self._pending = {kind: [] for kind in self._pending}
        return [tuple(pieces)] if pieces else []
