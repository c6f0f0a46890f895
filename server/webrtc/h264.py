"""H.264 between RTP's Annex B access units and the bus's AVCC frames.

WebRTC senders put SPS/PPS in band before each IDR and send no decoder
configuration record, so the codec configuration is built from what arrives (the
same rule as MPEG-TS ingest); the reverse direction puts them back in front of each
keyframe, because a browser that joins at a keyframe has no other way to get them.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence

from server.media import h264
from server.media.errors import MediaFormatError
from server.media.frame import Codec, CodecConfig, Frame, TrackKind
from server.media.nal import (
    START_CODE,
    Buffer,
    annexb_nal_spans,
    nals_to_length_prefixed,
    split_length_prefixed,
)

_SETS = frozenset({h264.NAL_SPS, h264.NAL_PPS})
_DROP = frozenset({h264.NAL_AUD})

VideoItem = CodecConfig | Frame


class AnnexBVideo:
    """Access units in (Annex B, RTP timestamps in 90 kHz ticks), bus items out."""

    __slots__ = ("_sets", "config")

    def __init__(self) -> None:
        self.config: CodecConfig | None = None
        self._sets: tuple[bytes, ...] = ()

    def access_unit(self, data: bytes, pts: int) -> list[VideoItem]:
        """The config (when its parameter sets changed) and the frame of one access unit.

        Frames before the first SPS/PPS are dropped: no output could decode them. WebRTC
        H.264 has no B-frames (constrained baseline; OBS turns them off for WHIP), so
        dts is pts. Raises MediaFormatError for bytes that are not Annex B.
        """
        view = memoryview(data)
        return self.nals([view[start:end] for start, end in annexb_nal_spans(data)], pts)

    def nals(self, nals: Sequence[Buffer], pts: int) -> list[VideoItem]:
        """The same for an access unit as NAL units (RTP's depacketizer gives these)."""
        sets: list[bytes] = []
        body: list[Buffer] = []
        keyframe = False
        for nal in nals:
            kind = nal[0] & 0x1F
            if kind in _SETS:
                sets.append(bytes(nal))
            elif kind not in _DROP:
                keyframe = keyframe or kind == h264.NAL_IDR
                body.append(nal)
        items: list[VideoItem] = []
        if sets and tuple(sets) != self._sets:
            self._sets = tuple(sets)
            sps, pps = h264.parameter_sets(sets)
            if sps and pps:
                config = h264.config_from_parameter_sets(sps, pps)
                if config != self.config:
                    self.config = config
                    items.append(config)
        if self.config is None or not body:
            return items
        payload = nals_to_length_prefixed(body)
        items.append(Frame(TrackKind.VIDEO, Codec.H264, pts, pts, keyframe, payload))
        return items


def parameter_sets_annexb(config: CodecConfig) -> bytes:
    """The SPS and PPS of an avcC config, each behind a start code."""
    if config.codec != Codec.H264:
        raise MediaFormatError(f"not H.264: {config.codec}")
    avcc = h264.parse_avcc(config.extradata)
    return b"".join(START_CODE + nal for nal in (*avcc.sps, *avcc.pps))


def frame_to_annexb(frame: Frame, sets: bytes) -> bytes:
    """A bus frame as Annex B; ``sets`` (from :func:`parameter_sets_annexb`) go in
    front of keyframes."""
    nals = split_length_prefixed(frame.payload)
    body = b"".join(START_CODE + nal for nal in nals)
    return sets + body if frame.keyframe else body
