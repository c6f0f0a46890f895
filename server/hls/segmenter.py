"""One live stream's HLS packager core: bus items in, segments, parts and playlists out.

Synchronous and clock-free: the bus-reading task calls ``feed(item, now)`` (``now`` =
wall-clock seconds, used only for EXT-X-PROGRAM-DATE-TIME) and the HTTP layer reads
playlists, init segments, segments and parts. ``on_change`` is called after anything
becomes visible (Change.PLAYLIST) or a part being written grows (Change.DATA), which is
where the HTTP layer wakes its blocked requests.

Cutting rules (90 kHz media time, ``fd`` = average frame duration of the main track):
* a segment ends before a video keyframe once it is >= target - fd/2 long, or earlier
  when the next keyframe (one observed GOP later) would come past the cap; the cap is
  the target + 10 % (a slightly late keyframe is waited for, EXTINF still rounds to the
  target), and a segment reaching it is cut between keyframes (GOP longer than target);
* audio-only segments are cut by time, never longer than the target;
* an LL-HLS part ends before a main-track frame that would take it past the part target
  and before a video keyframe when the part has reached 85 % of the target (so parts
  that start with one are INDEPENDENT, and no part but the last of a segment is short).
* the first segment waits (``track_wait`` of media, frames held) until every track the
  source announced has its configuration, so its init segment carries all of them.
* a rendition's segmenter follows its ``leader`` (the source's): it cuts segments at the
  keyframes where the leader started one (same presentation time), and takes the
  leader's numbering, timeline offset and program date-time there, so players switch
  renditions at the same MSN and PTS. Where the leader has not got that far yet, the
  rules above apply.
* a frame of the side track (audio beside video) goes into the part whose main-track
  span holds its decode time: one at or past the newest main frame waits for the next
  main frame. At a followed cut the split is the leader's keyframe's decode time, so a
  rendition's segment N carries the same audio frames as the source's, whatever order
  its encoder interleaved them in (audio filed by arrival left a rendition's segments an
  audio frame or two off the source's: a gap where a player switched, and a stall).
Each cut happens when the frame after the cut arrives, so every sample duration of the
main track is exact; the pending frames of a part are flushed as one moof+mdat (or one
per video frame with ``chunked_parts`` while ``streaming()`` says someone is receiving the
part as it is written: chunks cost CPU, so they are made only when they are used).
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from server.bus.items import BusItem, ConfigChange, Discontinuity, EndOfStream, TracksAnnounced
from server.media import aac
from server.media.frame import TIMEBASE, CodecConfig, Frame, TrackKind
from server.settings import HlsSettings

from . import views
from .blocking import BlockingReload, Directives, Edge
from .buffer import PartBuffer
from .clock import FrameClock
from .playlist import (
    MediaView,
    Variant,
    render_master,
    render_media,
    split_for_suffix,
    with_suffix,
)
from .store import Part, Segment, SegmentStore
from .tap import SegmentTap
from .writer import SegmentWriter, make_writer, supported

HOLD_MAX_FRAMES = 1024
PART_MIN_PERCENT = (
    85  # RFC 8216bis 4.4.4.9: parts but the last of a segment are >= 85 % of PART-TARGET
)
"""Frames held at most while the first segment waits for announced tracks (``track_wait``
bounds it in media time; this bounds memory if timestamps do not advance)."""


_ALL = 1 << 62
"""A raw time past any frame's: releases every held side frame."""


class Change(enum.Enum):
    """What ``on_change`` reports, so the HTTP layer can wake only the waiters concerned."""

    PLAYLIST = "playlist"  # a part/segment completed, the stream ended: playlists changed
    DATA = "data"  # a part still being written grew (chunked parts)


@dataclass(frozen=True, slots=True)
class Cut:
    """Where a leader's segment began: followers (renditions) start theirs there too."""

    pts: int  # raw presentation time of the segment's first main-track frame
    dts: int  # its raw decode time: where the leader's side track (audio) was split
    msn: int
    offset: int  # raw -> media time offset of the leader at that segment
    program_date_time: float


@dataclass(frozen=True, slots=True)
class SegmenterStats:
    """Counters of one packager (for the API and metrics)."""

    segments: int
    parts: int
    dropped_frames: int
    discontinuities: int
    bytes_written: int
    stored_bytes: int


def _frame_ticks(config: CodecConfig) -> float:
    """Expected main-track frame duration before any has been measured."""
    if config.track is TrackKind.AUDIO:
        asc = aac.parse_asc(config.extradata)
        rate = asc.extension_sample_rate or asc.sample_rate
        return asc.frame_length * max(1, rate // asc.sample_rate) * TIMEBASE / rate
    fps = config.fps if config.fps and 1 <= config.fps <= 300 else 30.0
    return TIMEBASE / fps


class Segmenter:
    """HLS/LL-HLS packaging state of one live stream (see the module docstring)."""

    def __init__(
        self,
        settings: HlsSettings,
        *,
        low_latency: bool | None = None,
        on_change: Callable[[Change], None] | None = None,
        first_sequence: int = 0,
        streaming: Callable[[], bool] | None = None,
        leader: Segmenter | None = None,
    ) -> None:
        """``first_sequence`` numbers the first segment and init segment: a stream's
        sessions start from distinct values so every URI names one immutable object
        (safe for a CDN to cache forever), even across sessions and restarts.
        ``streaming`` (None = always) tells whether a part being written is being sent
        to someone, so ``chunked_parts`` flushes a chunk per frame only then.
        ``leader`` (renditions): the source's segmenter, whose cuts this one follows."""
        self.settings = settings
        self._first = first_sequence
        self._want_ll = settings.low_latency if low_latency is None else low_latency
        self._on_change = on_change
        self._streaming = streaming
        self._target = round(settings.target_duration * TIMEBASE)
        # Hard cap of a segment: a late keyframe may stretch it by 10 % (EXTINF still
        # rounds to EXT-X-TARGETDURATION); past that it is cut between keyframes.
        limit = min(settings.target_duration * 1.1, math.ceil(settings.target_duration) + 0.499)
        self._limit = round(limit * TIMEBASE)
        self._part_target = round(settings.part_target * TIMEBASE)
        self._max_gap = round(settings.max_timestamp_gap * TIMEBASE)
        # A smaller forward gap (frames lost upstream) ends the segment instead of
        # stretching one frame over it, and the timeline continues without the hole.
        self._hole = self._part_target if self._want_ll else self._target // 2
        self._store = SegmentStore(settings.window_segments)
        self._configs: dict[TrackKind, CodecConfig] = {}
        # Until the first segment starts: the announced tracks and the frames held while
        # one of them has no configuration yet (None once released).
        self._announced: frozenset[TrackKind] = frozenset()
        self._held: list[tuple[Frame, float]] | None = []
        self._track_wait = round(settings.track_wait * TIMEBASE)
        # What HLS carries of them (video first) and the track that drives cutting.
        self._wanted: tuple[CodecConfig, ...] = ()
        self._main = TrackKind.VIDEO
        self._writer_tracks: frozenset[TrackKind] = frozenset()
        self._writer: SegmentWriter | None = None
        self._init_version = first_sequence - 1
        self._open: Segment | None = None
        self._part: Part | None = None
        self._next_msn = first_sequence
        self._offset = 0
        self._rebase = True
        self._continue_at = 0  # media time where the next segment starts after a break
        self._pending_discontinuity = False
        self._anchor: tuple[float, int] | None = None  # (wall clock, media time)
        self._clock = FrameClock(TIMEBASE / 30)
        self._last_side: int | None = None  # raw dts of the non-main track
        self._side: deque[Frame] = deque()  # side frames waiting for the main track
        self._newest_pts: int | None = None  # pts of the newest main-track frame
        self._ended = False
        self._version = 0
        self._cache: dict[bool, tuple[int, tuple[str, ...]]] = {}
        self._segments = self._parts = self._dropped = self._breaks = self._bytes = 0
        self._leader = leader
        self._cuts: deque[Cut] = deque(maxlen=2 * settings.window_segments + 4)
        self._latest: int | None = None  # highest raw main-track dts seen
        self.tap: SegmentTap | None = None  # the recorder, copying what is written

    # ------------------------------------------------------------------ input

    def feed(self, item: BusItem, now: float) -> None:
        """Dispatch one bus item (MetadataChange is not used by HLS)."""
        if isinstance(item, Frame):
            self.on_frame(item, now)
        elif isinstance(item, ConfigChange):
            self.on_config(item.config)
        elif isinstance(item, TracksAnnounced):
            self.on_tracks(item.tracks)
        elif isinstance(item, Discontinuity):
            self.on_discontinuity()
        elif isinstance(item, EndOfStream):
            self.on_end()

    def on_tracks(self, tracks: frozenset[TrackKind]) -> None:
        """The source announced its tracks: the first segment waits (bounded) for them."""
        self._announced = tracks
        if self._held is not None and not self._missing_tracks():
            self._release()

    def on_config(self, config: CodecConfig) -> None:
        """A track's configuration; a change of what HLS carries ends the segment."""
        if self._configs.get(config.track) == config:
            return
        self._configs[config.track] = config
        self._wanted = supported(list(self._configs.values()))
        self._main = self._wanted[0].track if self._wanted else TrackKind.VIDEO
        if self._writer is not None and self._wanted != self._writer.configs:
            self._break(discontinuity=True)
        if self.tap is not None:  # after the break: the tap has the last part first
            self.tap.tap_config(self._configs)
        if self._held is not None and not self._missing_tracks():
            self._release()

    def on_discontinuity(self) -> None:
        """The publisher reconnected: close the segment; the next one is discontinuous."""
        self._release()
        self._break(discontinuity=True)

    def on_end(self) -> None:
        """The stream ended: publish what is open and add EXT-X-ENDLIST."""
        if self._ended:
            return
        self._release()
        if self._open is not None:
            self._release_side(_ALL)
            self._close_segment(None)
        self._ended = True
        self._changed(Change.PLAYLIST)
        if self.tap is not None:
            self.tap.tap_end()

    def on_frame(self, frame: Frame, now: float) -> None:
        """Add one frame (decode order); frames that cannot be used yet are counted."""
        config = self._configs.get(frame.track)
        if self._ended or config is None or config.codec != frame.codec:
            self._dropped += 1
            return
        if self._held is not None and self._hold(frame, now):
            return
        if frame.track is self._main:
            self._main_frame(frame, now)
        else:
            self._side_frame(frame)

    # ------------------------------------------------------------------ announced tracks

    def _missing_tracks(self) -> bool:
        return any(track not in self._configs for track in self._announced)

    def _hold(self, frame: Frame, now: float) -> bool:
        """Before the first segment, keep frames while an announced track has no
        configuration (at most ``track_wait`` of media from the first kept frame), so
        the first init segment carries every track; True when ``frame`` was taken."""
        held = self._held
        assert held is not None
        if not self._missing_tracks():
            self._release()
            return False
        if not held and frame.track is TrackKind.VIDEO and not frame.keyframe:
            return False  # nothing can start before a keyframe: dropped as usual
        held.append((frame, now))
        if 0 <= frame.dts - held[0][0].dts < self._track_wait and len(held) < HOLD_MAX_FRAMES:
            return True
        self._release()  # the wait is over: start with the tracks that came
        return True

    def _release(self) -> None:
        """Stop waiting for announced tracks (for good) and feed the held frames."""
        held, self._held = self._held, None
        for frame, now in held or ():
            self.on_frame(frame, now)

    # ------------------------------------------------------------------ cutting

    def _main_frame(self, frame: Frame, now: float) -> None:
        if self._latest is None or frame.dts > self._latest:
            self._latest = frame.dts
        last = self._clock.last
        if last is not None:
            delta = frame.dts - last
            if not 0 <= delta <= self._max_gap:
                self._break(discontinuity=True)  # timestamps jumped: like a reconnect
            elif delta > self._hole:
                self._break(discontinuity=False)  # frames are missing: close the hole
        video_key = frame.keyframe and frame.track is TrackKind.VIDEO
        follow = self._follow(frame) if video_key else None
        if self._open is None:
            if (frame.track is TrackKind.VIDEO and not frame.keyframe) or follow is False:
                self._dropped += 1  # a rendition starts where the source started a segment
                return
            self._start_segment(frame, now, follow if isinstance(follow, Cut) else None)
            self._clock.observe(frame.dts, video_key)
            self._newest_pts = frame.pts
            return
        self._clock.observe(frame.dts, video_key)  # first, so a keyframe knows its GOP
        self._newest_pts = frame.pts
        if isinstance(follow, Cut) and frame.dts + self._offset > self._open.start:
            self._release_side(follow.dts)
            self._close_segment(frame.dts)
            self._start_segment(frame, now, follow)
            return
        self._release_side(self._split_before(frame.dts, frame.pts))
        if not self._cut(frame, now, may_cut_segment=follow is None):
            self._add(frame, segment_start=False)

    def _follow(self, frame: Frame) -> Cut | bool | None:
        """At a video keyframe of a rendition: the leader's cut there, False when the
        leader passed this point without cutting, None when it cannot tell (no leader,
        or the leader is not there yet)."""
        leader = self._leader
        if leader is None or leader._latest is None or leader._latest < frame.pts:
            return None
        for cut in reversed(leader._cuts):
            if cut.pts == frame.pts:
                return cut
            if cut.pts < frame.pts:
                break
        return False

    def _cut(self, frame: Frame, now: float, *, may_cut_segment: bool = True) -> bool:
        """Cut before ``frame`` if a rule says so; True when it opened a new segment."""
        assert self._open is not None and self._part is not None
        media = frame.dts + self._offset
        elapsed = media - self._open.start
        video = frame.track is TrackKind.VIDEO
        if may_cut_segment and self._segment_due(elapsed, video, frame.keyframe):
            self._close_segment(frame.dts)
            self._start_segment(frame, now)
            return True
        if self.low_latency:
            in_part = media - self._part.start
            clock = self._clock
            too_long = in_part + clock.frame > self._part_target + clock.tolerance
            if in_part > 0 and (
                (video and frame.keyframe and self._part_full(in_part)) or too_long
            ):
                self._close_part(frame.dts)
                self._open_part(media, frame.keyframe)
            elif self.settings.chunked_parts and (self._streaming is None or self._streaming()):
                self._flush_chunk(frame.dts)
        return False

    def _part_full(self, in_part: int) -> bool:
        """Whether a keyframe inside a segment may close the open part: only when that
        part is at least 85 % of the part target, as the spec asks of every part but the
        last of a segment. A GOP shorter than the segment (1 s at 25 fps) would otherwise
        leave a one-frame part before each keyframe, and hls.js switching renditions at
        the INDEPENDENT part after it was seen to skip a whole GOP and stall. The
        keyframe then rides inside a part that is not INDEPENDENT; segments still open
        on one."""
        return in_part * 100 >= self._part_target * PART_MIN_PERCENT

    def _segment_due(self, elapsed: int, video: bool, keyframe: bool) -> bool:
        """Whether the open segment ends before a main-track frame ``elapsed`` into it."""
        clock = self._clock
        fd = clock.frame
        if elapsed <= 0:
            return False
        if not video:  # audio-only: by time, never past the target
            return elapsed + fd > self._target + clock.tolerance
        if elapsed + fd > self._limit + clock.tolerance:
            return True  # the keyframe is too late: cut between keyframes
        if not keyframe:
            return False
        gop = clock.gop
        return elapsed >= self._target - fd / 2 or (gop > 0 and elapsed + gop > self._limit)

    def _side_frame(self, frame: Frame) -> None:
        """A frame of the non-main track: into the open part when a later main frame is
        already there, else held until one is (see the module docstring)."""
        writer = self._writer
        last = self._last_side
        if (
            self._open is None
            or writer is None
            or frame.track not in self._writer_tracks
            or (last is not None and frame.dts <= last)
            or frame.dts + self._offset < 0
        ):
            self._dropped += 1
            return
        self._last_side = frame.dts
        newest, shown = self._clock.last, self._newest_pts
        before = None if newest is None or shown is None else self._split_before(newest, shown)
        side = self._side
        if not side and before is not None and frame.dts < before:
            self._add(frame, segment_start=False)  # the usual case: nothing to wait for
            return
        side.append(frame)
        if len(side) > HOLD_MAX_FRAMES:  # the main track stopped: bounded all the same
            self._add(side.popleft(), segment_start=False)
        if before is not None:
            self._release_side(before)

    def _split_before(self, dts: int, pts: int) -> int:
        """Side frames decoded before this may go into the open part, the main track
        being at ``dts`` (showing ``pts``). A rendition's encoder has no B-frames, so
        the leader's next cut splits audio at a decode time up to its B-frame delay
        before the rendition's own keyframe there: held back to that split."""
        leader = self._leader
        if leader is None:
            return dts
        split = dts
        for cut in reversed(leader._cuts):
            if cut.pts <= pts:
                break
            split = min(split, cut.dts)
        return split

    def _release_side(self, before: int) -> None:
        """Held side frames decoded before raw time ``before``, into the open part."""
        side = self._side
        while side and side[0].dts < before:
            self._add(side.popleft(), segment_start=False)

    def _add(self, frame: Frame, *, segment_start: bool) -> None:
        assert self._writer is not None and self._part is not None
        data = self._writer.add(frame, self._offset, segment_start=segment_start)
        if data:
            self._part.buffer.append(data)

    # ------------------------------------------------------------------ segments and parts

    def _start_segment(self, frame: Frame, now: float, cut: Cut | None = None) -> None:
        wanted = self._wanted
        if self._writer is None or self._writer.configs != wanted:
            try:
                self._writer = make_writer(self.settings.segment_format, wanted)
            except ValueError:  # a configuration record no muxer can use: wait for another
                self._writer = None
                self._dropped += 1
                return
            self._writer_tracks = frozenset(c.track for c in wanted)
            self._init_version += 1
            init = self._writer.init_segment()
            if init is not None:
                self._store.add_init(self._init_version, init)
            if self.tap is not None:
                self.tap.tap_init(self._writer, init)
            self._clock.reset(_frame_ticks(wanted[0]))
        if cut is not None:
            self._adopt(cut, frame)
        if self._rebase:
            self._offset = self._continue_at - frame.dts
            self._rebase = False
        media = frame.dts + self._offset
        if self._anchor is None:
            self._anchor = (now, media)
        wall, anchor_media = self._anchor
        self._open = Segment(
            msn=self._next_msn,
            start=media,
            discontinuity=self._pending_discontinuity,
            program_date_time=wall + (media - anchor_media) / TIMEBASE,
            init_version=self._init_version if self._writer.extension == "m4s" else None,
        )
        self._next_msn += 1
        self._pending_discontinuity = False
        self._cuts.append(
            Cut(frame.pts, frame.dts, self._open.msn, self._offset, self._open.program_date_time)
        )
        self._open_part(media, frame.keyframe or frame.track is TrackKind.AUDIO)
        self._add(frame, segment_start=True)

    def _adopt(self, cut: Cut, frame: Frame) -> None:
        """Start this segment as the leader started its own at the same picture: same
        presentation time, date-time and (while the numbering stays consecutive) MSN."""
        self._offset = cut.offset
        self._rebase = False
        self._anchor = (cut.program_date_time, frame.dts + cut.offset)
        if self._store.last is None and self._open is None:
            self._next_msn = cut.msn
            self._first = cut.msn

    def _open_part(self, media: int, independent: bool) -> None:
        assert self._open is not None
        self._part = Part(
            len(self._open.parts), media, independent or self._main is TrackKind.AUDIO
        )
        self._open.parts.append(self._part)

    def _end_time(self, end_dts: int | None) -> int:
        """Media time where the open segment/part ends (estimated at a break or the end)."""
        if end_dts is not None:
            return end_dts + self._offset
        last = self._clock.last or 0
        return last + self._offset + round(self._clock.frame)

    def _flush_chunk(self, end_dts: int) -> None:
        assert self._writer is not None and self._part is not None
        data = self._writer.flush(end_dts, self._offset)
        if data:
            self._part.buffer.append(data)
            self._changed(Change.DATA)

    def _close_part(self, end_dts: int | None) -> None:
        assert self._writer is not None and self._part is not None
        part = self._part
        part.buffer.append(self._writer.flush(end_dts, self._offset))
        part.duration = max(0, self._end_time(end_dts) - part.start) / TIMEBASE
        part.buffer.finish()
        if self.tap is not None:
            self.tap.tap_part(part.buffer.pieces, part.independent)
        self._parts += 1 if self.low_latency else 0
        self._part = None
        self._changed(Change.PLAYLIST)

    def _close_segment(self, end_dts: int | None) -> None:
        segment = self._open
        assert segment is not None
        end = self._end_time(end_dts)
        self._close_part(end_dts)
        segment.seal(max(0, end - segment.start) / TIMEBASE)
        self._store.add(segment)
        self._open = None
        self._continue_at = end
        self._segments += 1
        self._bytes += segment.size
        self._changed(Change.PLAYLIST)

    def _break(self, *, discontinuity: bool) -> None:
        """Close the open segment; the next one starts at a keyframe, rebased to continue
        the timeline, and (``discontinuity``) tagged EXT-X-DISCONTINUITY."""
        if self._open is not None:
            self._release_side(_ALL)
            self._close_segment(None)
        self._side.clear()
        if discontinuity and self._next_msn > self._first and not self._pending_discontinuity:
            self._pending_discontinuity = True
            self._breaks += 1
        self._rebase = True
        self._anchor = None
        self._last_side = None
        self._newest_pts = None
        self._clock.reset()

    def _changed(self, change: Change) -> None:
        if change is Change.PLAYLIST:
            self._version += 1
        if self._on_change is not None:
            self._on_change(change)

    # ------------------------------------------------------------------ output

    @property
    def low_latency(self) -> bool:
        """LL-HLS parts are produced (asked for, and the container is fMP4)."""
        return self._want_ll and (self._writer is None or self._writer.extension == "m4s")

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def version(self) -> int:
        """Counts playlist changes: a rendered playlist stays valid while it is the same."""
        return self._version

    @property
    def has_segment(self) -> bool:
        """A complete segment exists: something a player without LL-HLS can start from."""
        return self._store.last is not None

    @property
    def target_duration(self) -> int:
        """EXT-X-TARGETDURATION: the configured target rounded up; never changes."""
        return max(1, -(-self._target // TIMEBASE))

    @property
    def part_target(self) -> float | None:
        """PART-TARGET in seconds when parts are produced."""
        return self._part_target / TIMEBASE if self.low_latency else None

    @property
    def preload_hint(self) -> tuple[int, int] | None:
        """(msn, part) of the part the playlist hints at (the one being written)."""
        if self._ended or not self.low_latency:
            return None
        if self._open is None:
            return (self._next_msn, 0)
        return (self._open.msn, len(self._open.complete_parts))

    def edge(self) -> Edge:
        """The live edge for blocking-reload decisions. Before the first segment closes,
        the "last" one is the one numbered just before it (numbering starts at
        ``first_sequence``), so requests for the first segment's parts are not too far."""
        last = self._store.last
        complete = len(self._open.complete_parts) if self._open and self.low_latency else 0
        return Edge(
            last_msn=last.msn if last else self._first - 1,
            last_segment_parts=len(last.parts) if last else 0,
            last_part=complete - 1,
            ended=self._ended,
        )

    def blocking_reload(self, directives: Directives, started: float) -> BlockingReload:
        """A held ``_HLS_msn``/``_HLS_part`` request against this playlist (``started`` on
        the caller's monotonic clock); decide it with ``edge()`` after every change."""
        return BlockingReload(directives, started, self.target_duration, self.part_target)

    def init_segment(self, version: int) -> bytes | None:
        """Init segment ``version`` (EXT-X-MAP), while some stored segment uses it."""
        return self._store.init(version)

    def segment(self, msn: int, extension: str | None = None) -> bytes | None:
        """Bytes of complete segment ``msn`` (listed or recently removed), else None; with
        ``extension`` ("m4s"/"ts", from the requested name) only if the container matches."""
        found = self._store.get(msn)
        if found is None:
            return None
        if extension is not None and extension != ("ts" if found.init_version is None else "m4s"):
            return None
        return found.data

    def part(self, msn: int, index: int) -> PartBuffer | None:
        """Part ``index`` of segment ``msn``, complete or still being written."""
        segment = self._open if self._open is not None and self._open.msn == msn else None
        segment = segment or self._store.get(msn)
        if segment is None or not 0 <= index < len(segment.parts):
            return None
        return segment.parts[index].buffer

    def stats(self) -> SegmenterStats:
        return SegmenterStats(
            segments=self._segments,
            parts=self._parts,
            dropped_frames=self._dropped,
            discontinuities=self._breaks,
            bytes_written=self._bytes,
            stored_bytes=self._store.stored_bytes,
        )

    # ------------------------------------------------------------------ playlists

    def media_playlist(self, *, skip: bool = False, suffix: str = "") -> str | None:
        """The media playlist (a delta update when ``skip``), or None before any media.

        ``suffix`` (e.g. ``?token=...``) is appended to every URI.
        """
        cached = self._cache.get(skip)
        if cached is None or cached[0] != self._version:
            view = self.media_view()
            if view is None:
                return None
            cached = (self._version, split_for_suffix(render_media(view, skip=skip)))
            self._cache[skip] = cached
        return with_suffix(cached[1], suffix)

    def media_view(self) -> MediaView | None:
        """Snapshot of what the media playlist shows (None before the first part/segment)."""
        part_target = self.part_target
        ll = None
        if part_target is not None:
            window = self.settings.window_segments * self.settings.target_duration
            ll = views.low_latency_attributes(part_target, self.target_duration, window)
        return views.media_view(
            self._store.playlist(),
            self._open,
            target_duration=self.target_duration,
            discontinuity_sequence=self._store.discontinuity_sequence,
            low_latency=ll,
            preload_hint=self.preload_hint,
            ended=self._ended,
        )

    def master_playlist(self, suffix: str = "") -> str | None:
        """The multivariant playlist from the real stream, or None before any media."""
        variant = self.variant()
        if variant is None:
            return None
        return with_suffix(split_for_suffix(render_master([variant])), suffix)

    def variant(self, path: str = "") -> Variant | None:
        """This stream's EXT-X-STREAM-INF (measured), or None before any media."""
        writer = self._writer
        if writer is None or self.media_view() is None:
            return None
        bandwidth = self._store.bandwidth(self.settings.target_duration / 4)
        if not bandwidth[0] and self._open is not None:
            bandwidth = (views.open_rate(self._open),) * 2
        fps = TIMEBASE / self._clock.frame if self._clock.measured else None
        variant = views.variant(writer.configs, bandwidth, fps)
        return replace(variant, path=path)
