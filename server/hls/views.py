"""From the segmenter's live state to the frozen views the playlist renderer takes.

Kept apart from the cutting logic: this is what a playlist *shows* (which segments,
which of their parts, the LL-HLS attributes, the variant's description), computed from
stored segments without touching the packaging state.
"""

from __future__ import annotations

from collections.abc import Sequence

from server.media.codec_string import codecs_attribute
from server.media.frame import CodecConfig, TrackKind

from .playlist import LowLatency, MediaView, PartLine, SegmentLine, Variant
from .store import Part, Segment

PART_LIST_TARGET_DURATIONS = 3
"""EXT-X-PART lines are listed for the last three target durations (RFC 8216bis 6.2.2)."""
SKIP_TARGET_DURATIONS = 6
"""CAN-SKIP-UNTIL: at least six target durations (RFC 8216bis 4.4.3.8)."""


def low_latency_attributes(
    part_target: float, target_duration: int, window_seconds: float
) -> LowLatency:
    """PART-HOLD-BACK = 3 parts, HOLD-BACK = 3 segments; delta updates only when the
    window is longer than the skip boundary (otherwise nothing could ever be skipped)."""
    skip_until = float(SKIP_TARGET_DURATIONS * target_duration)
    return LowLatency(
        part_target=part_target,
        part_hold_back=3 * part_target,
        hold_back=3.0 * target_duration,
        can_skip_until=skip_until if window_seconds > skip_until else None,
    )


def _line(segment: Segment, parts: Sequence[Part], listed: bool) -> SegmentLine:
    return SegmentLine(
        msn=segment.msn,
        duration=segment.duration,
        discontinuity=segment.discontinuity,
        program_date_time=segment.program_date_time,
        init_version=segment.init_version,
        parts=tuple(PartLine(p.index, p.duration, p.independent) for p in parts) if listed else (),
    )


def segment_lines(
    stored: Sequence[Segment], open_segment: Segment | None, part_window: float | None
) -> tuple[SegmentLine, ...]:
    """The playlist's segments, oldest first, then the open one if it has complete parts.

    ``part_window`` (seconds; None = no parts) keeps EXT-X-PART lines only on segments
    that end within that distance of the live edge.
    """
    entries: list[tuple[Segment, Sequence[Part], float]] = [
        (s, s.parts, s.duration or 0.0) for s in stored
    ]
    if open_segment is not None and part_window is not None:
        done = open_segment.complete_parts
        if done:
            entries.append((open_segment, done, sum(p.duration for p in done)))
    lines: list[SegmentLine] = []
    age = 0.0
    for segment, parts, duration in reversed(entries):
        lines.append(_line(segment, parts, part_window is not None and age < part_window))
        age += duration
    return tuple(reversed(lines))


def media_view(
    stored: Sequence[Segment],
    open_segment: Segment | None,
    *,
    target_duration: int,
    discontinuity_sequence: int,
    low_latency: LowLatency | None,
    preload_hint: tuple[int, int] | None,
    ended: bool,
) -> MediaView | None:
    """The media playlist's view, or None while there is nothing to list yet."""
    window = PART_LIST_TARGET_DURATIONS * target_duration if low_latency else None
    lines = segment_lines(stored, open_segment, window)
    if not lines:
        return None
    return MediaView(
        target_duration=target_duration,
        media_sequence=lines[0].msn,
        discontinuity_sequence=discontinuity_sequence,
        segments=lines,
        low_latency=low_latency,
        preload_hint=preload_hint,
        ended=ended,
    )


def open_rate(segment: Segment) -> int:
    """Bits per second of the complete parts of a segment still being written."""
    parts = segment.complete_parts
    seconds = sum(p.duration for p in parts)
    return round(sum(p.buffer.size for p in parts) * 8 / seconds) if seconds else 0


def variant(
    configs: Sequence[CodecConfig], bandwidth: tuple[int, int], measured_fps: float | None
) -> Variant:
    """The EXT-X-STREAM-INF description of the stream: CODECS from the configuration
    records, RESOLUTION from the SPS, FRAME-RATE and BANDWIDTH as measured."""
    video = next((c for c in configs if c.track is TrackKind.VIDEO), None)
    audio = next((c for c in configs if c.track is TrackKind.AUDIO), None)
    peak, average = bandwidth
    return Variant(
        bandwidth=peak,
        average_bandwidth=average or None,
        codecs=codecs_attribute(video, audio),
        resolution=(video.width, video.height) if video and video.width else None,
        frame_rate=(measured_fps or video.fps) if video else None,
    )
