"""A copy of what a live segmenter writes, for whoever stores the stream as it is.

The recorder keeps a session's media as the HLS packager already muxed it: the init
segment of each configuration and every finished part, in order. Taking those bytes
costs nothing per frame (muxing each frame a second time was most of what recording
cost). A tap is called synchronously from the segmenter and must not block.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from server.media.frame import CodecConfig, TrackKind

from .buffer import Data
from .writer import SegmentWriter


class SegmentTap(Protocol):
    def tap_config(self, configs: Mapping[TrackKind, CodecConfig]) -> None:
        """The source's configurations changed (all of them, also those HLS leaves out)."""

    def tap_init(self, writer: SegmentWriter, init: bytes | None) -> None:
        """A new writer (a new configuration) starts: its init segment (None for TS)."""

    def tap_part(self, pieces: tuple[Data, ...], independent: bool) -> None:
        """A part (or a whole segment without LL-HLS) is complete: its bytes in order;
        ``independent`` = it starts with a keyframe."""

    def tap_end(self) -> None:
        """The stream ended; the last part came before."""
