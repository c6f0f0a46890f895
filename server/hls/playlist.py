"""Rendering of HLS multivariant and media playlists (RFC 8216bis, LL-HLS) from snapshots.

Pure functions over frozen views, so the segmenter can build a playlist once per change
and the HTTP layer can serve it to every viewer. Every URI is followed by ``SUFFIX``
(a NUL character, which can never appear in a playlist); ``with_suffix`` swaps it for a
viewer's query string (e.g. ``?token=...``) with one C-level join per request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from .names import MEDIA_PLAYLIST, init_name, part_name, segment_name

SUFFIX = "\x00"
_FORBIDDEN_IN_SUFFIX = frozenset('"\r\n\x00')


@dataclass(frozen=True, slots=True)
class PartLine:
    """One ``EXT-X-PART``: index within its segment, seconds, starts with a keyframe."""

    index: int
    duration: float
    independent: bool


@dataclass(frozen=True, slots=True)
class SegmentLine:
    """One segment of the playlist; ``duration`` None = still being written (parts only)."""

    msn: int
    duration: float | None
    discontinuity: bool
    program_date_time: float | None
    init_version: int | None
    parts: tuple[PartLine, ...] = ()


@dataclass(frozen=True, slots=True)
class LowLatency:
    """The LL-HLS attributes of a media playlist (all in seconds)."""

    part_target: float
    part_hold_back: float
    hold_back: float
    can_skip_until: float | None


@dataclass(frozen=True, slots=True)
class MediaView:
    """Everything a media playlist shows; ``segments`` may end with the open segment."""

    target_duration: int
    media_sequence: int
    discontinuity_sequence: int
    segments: tuple[SegmentLine, ...]
    low_latency: LowLatency | None
    preload_hint: tuple[int, int] | None  # (msn, part index) of the next part
    ended: bool
    playlist_type: str | None = None  # "VOD" for a file's playlist: it never changes


def _seconds(value: float) -> str:
    """Durations with millisecond precision, the way players parse them."""
    return f"{value:.3f}"


def _attr(value: float) -> str:
    """Attribute seconds without noise: ``1.5``, ``6``, ``0.333``."""
    return f"{round(value, 3):g}"


def format_date_time(epoch: float) -> str:
    """ISO 8601 UTC with milliseconds, as EXT-X-PROGRAM-DATE-TIME wants."""
    whole = math.floor(epoch)
    millis = min(999, round((epoch - whole) * 1000))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def skipped_count(view: MediaView) -> int:
    """How many leading complete segments a delta update may replace by EXT-X-SKIP.

    A segment can be skipped only when it starts more than CAN-SKIP-UNTIL seconds
    before the end of the playlist (RFC 8216bis 6.2.5.1, the Skip Boundary).
    """
    ll = view.low_latency
    if ll is None or ll.can_skip_until is None:
        return 0
    remaining = sum(
        s.duration if s.duration is not None else sum(p.duration for p in s.parts)
        for s in view.segments
    )
    count = 0
    for segment in view.segments:
        if segment.duration is None or remaining <= ll.can_skip_until:
            break
        remaining -= segment.duration
        count += 1
    return count


def _header(view: MediaView, skip: int) -> list[str]:
    ll = view.low_latency
    fmp4 = any(s.init_version is not None for s in view.segments)
    version = 9 if ll and ll.can_skip_until else (6 if fmp4 else 3)
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{version}",
        f"#EXT-X-TARGETDURATION:{view.target_duration}",
    ]
    if view.playlist_type is not None:
        lines.append(f"#EXT-X-PLAYLIST-TYPE:{view.playlist_type}")
    if ll is not None:
        control = (
            f"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={_attr(ll.part_hold_back)}"
            f",HOLD-BACK={_attr(ll.hold_back)}"
        )
        if ll.can_skip_until:
            control += f",CAN-SKIP-UNTIL={_attr(ll.can_skip_until)}"
        lines += [control, f"#EXT-X-PART-INF:PART-TARGET={_attr(ll.part_target)}"]
    lines += [
        f"#EXT-X-MEDIA-SEQUENCE:{view.media_sequence}",
        f"#EXT-X-DISCONTINUITY-SEQUENCE:{view.discontinuity_sequence}",
    ]
    if skip:
        lines.append(f"#EXT-X-SKIP:SKIPPED-SEGMENTS={skip}")
    return lines


def segment_extension(segment: SegmentLine) -> str:
    """fMP4 segments (which have an init segment) are .m4s, the others MPEG-TS."""
    return "m4s" if segment.init_version is not None else "ts"


def _segment_lines(segment: SegmentLine, show_map: bool) -> list[str]:
    lines: list[str] = []
    if segment.discontinuity:
        lines.append("#EXT-X-DISCONTINUITY")
    if show_map and segment.init_version is not None:
        lines.append(f'#EXT-X-MAP:URI="{init_name(segment.init_version)}{SUFFIX}"')
    if segment.program_date_time is not None:
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{format_date_time(segment.program_date_time)}")
    for part in segment.parts:
        line = (
            f"#EXT-X-PART:DURATION={_seconds(part.duration)},"
            f'URI="{part_name(segment.msn, part.index)}{SUFFIX}"'
        )
        lines.append(line + (",INDEPENDENT=YES" if part.independent else ""))
    if segment.duration is not None:
        lines += [
            f"#EXTINF:{_seconds(segment.duration)},",
            segment_name(segment.msn, segment_extension(segment)) + SUFFIX,
        ]
    return lines


def render_media(view: MediaView, *, skip: bool = False) -> str:
    """The media playlist text with ``SUFFIX`` after each URI (see ``with_suffix``).

    ``skip`` asks for a delta update (``_HLS_skip=YES``/``v2``); it is honoured only when
    the view advertises CAN-SKIP-UNTIL and something is old enough to skip.
    """
    skipped = skipped_count(view) if skip else 0
    lines = _header(view, skipped)
    previous_init: int | None = None
    for position, segment in enumerate(view.segments[skipped:]):
        show_map = position == 0 or segment.init_version != previous_init
        lines += _segment_lines(segment, show_map)
        previous_init = segment.init_version
    if view.preload_hint is not None and not view.ended:
        msn, index = view.preload_hint
        lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{part_name(msn, index)}{SUFFIX}"')
    if view.ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class Variant:
    """One rendition of a stream, described from the real stream; ``path`` is the
    directory of its media playlist ("" for the source, "720p/" for a rung)."""

    bandwidth: int
    average_bandwidth: int | None
    codecs: str
    resolution: tuple[int, int] | None
    frame_rate: float | None
    path: str = ""


def render_master(variants: Sequence[Variant], uri: str = MEDIA_PLAYLIST) -> str:
    """The multivariant playlist (one EXT-X-STREAM-INF per variant, each to its own
    ``path`` + ``uri``)."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3"]
    for v in variants:
        attrs = [f"BANDWIDTH={max(1, v.bandwidth)}"]
        if v.average_bandwidth:
            attrs.append(f"AVERAGE-BANDWIDTH={v.average_bandwidth}")
        attrs.append(f'CODECS="{v.codecs}"')
        if v.resolution is not None:
            attrs.append(f"RESOLUTION={v.resolution[0]}x{v.resolution[1]}")
        if v.frame_rate:
            attrs.append(f"FRAME-RATE={v.frame_rate:.3f}")
        lines += ["#EXT-X-STREAM-INF:" + ",".join(attrs), v.path + uri + SUFFIX]
    return "\n".join(lines) + "\n"


def check_suffix(suffix: str) -> str:
    """Validate a viewer's query suffix (it is pasted into quoted URIs)."""
    if any(c in _FORBIDDEN_IN_SUFFIX for c in suffix):
        raise ValueError("playlist URI suffix must not contain quotes, newlines or NUL")
    return suffix


def split_for_suffix(text: str) -> tuple[str, ...]:
    """Pre-split rendered text so ``with_suffix`` is a single join per request."""
    return tuple(text.split(SUFFIX))


def with_suffix(pieces: Sequence[str], suffix: str = "") -> str:
    """The playlist with ``suffix`` (validated) after every URI."""
    return check_suffix(suffix).join(pieces)
