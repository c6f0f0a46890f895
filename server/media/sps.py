"""What the H.264 and H.265 sequence parameter sets have in common.

The two VUIs (H.264 Annex E.1.1, H.265 Annex E.2.1) open with the same four optional
groups before anything codec-specific, and both records turn into a ``CodecConfig``
from their first SPS the same way; kept here once so a fix reaches both codecs.
"""

from __future__ import annotations

from typing import Protocol

from .bits import BitReader
from .frame import Codec, CodecConfig, TrackKind


class SpsFacts(Protocol):
    """The parsed SPS fields a ``CodecConfig`` is made from."""

    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def profile_idc(self) -> int: ...
    @property
    def level_idc(self) -> int: ...
    @property
    def fps(self) -> float | None: ...


def skip_vui_head(r: BitReader) -> None:
    """Skip aspect ratio, overscan, video signal type and chroma location info."""
    if r.flag() and r.u(8) == 255:  # aspect_ratio_info_present_flag, Extended_SAR
        r.skip(32)
    if r.flag():  # overscan_info_present_flag
        r.skip(1)
    if r.flag():  # video_signal_type_present_flag
        r.skip(4)
        if r.flag():  # colour_description_present_flag
            r.skip(24)
    if r.flag():  # chroma_loc_info_present_flag
        r.ue()
        r.ue()


def vui_timing(r: BitReader) -> tuple[int, int] | None:
    """(num_units_in_tick, time_scale) after a set timing-info flag; None when the
    flag is clear or either value is 0 (no usable frame rate)."""
    if not r.flag():  # timing_info_present_flag
        return None
    num_units_in_tick, time_scale = r.u(32), r.u(32)
    if num_units_in_tick == 0 or time_scale == 0:
        return None
    return num_units_in_tick, time_scale


def video_config(codec: Codec, extradata: bytes, sps: SpsFacts) -> CodecConfig:
    """The video ``CodecConfig`` for a decoder configuration record and its first SPS."""
    return CodecConfig(
        track=TrackKind.VIDEO,
        codec=codec,
        extradata=extradata,
        width=sps.width,
        height=sps.height,
        profile=sps.profile_idc,
        level=sps.level_idc,
        fps=sps.fps,
    )
