"""H.264 encoding to bus Frames.

No B-frames, so ``dts == pts`` and an encoded frame leaves the encoder as soon as its
look-ahead allows: the outputs (LL-HLS parts, RTMP pushes) get frames in order with no
reordering delay. Keyframes come where the caller forces them (renditions align to the
source's) or every ``keyint_seconds``; scene-cut keyframes are off so that GOPs are
predictable and renditions never cut a segment the source does not.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from typing import Any

import av
from av.codec.context import Flags
from av.video.frame import PictureType
from av.video.reformatter import Interpolation, VideoReformatter

from server.encode.profile import VideoProfile
from server.media import h264
from server.media.frame import TIMEBASE, Codec, CodecConfig, Frame, TrackKind
from server.media.nal import annexb_to_length_prefixed, split_annexb

_TICKS = Fraction(1, TIMEBASE)


def x264_options(profile: VideoProfile) -> dict[str, str]:
    """The encoder options, also what the bench's ffmpeg reference is given."""
    keyint = max(1, round(float(profile.fps) * profile.keyint_seconds))
    options = {
        "preset": profile.preset,
        "bf": "0",
        "g": str(keyint),
        "sc_threshold": "0",
        "maxrate": str(profile.bitrate),
        "bufsize": str(profile.bitrate * 2),
    }
    if profile.encoder == "libx264":
        options["forced-idr"] = "1"
    return options


class VideoEncoder:
    """One H.264 encoder at one size; frames of any size/format in, AVCC Frames out."""

    def __init__(self, profile: VideoProfile) -> None:
        self.profile = profile
        ctx = av.CodecContext.create(profile.encoder, "w")
        assert isinstance(ctx, av.VideoCodecContext)
        ctx.width, ctx.height, ctx.pix_fmt = profile.width, profile.height, "yuv420p"
        ctx.time_base = _TICKS
        ctx.framerate = profile.fps
        ctx.bit_rate = profile.bitrate
        ctx.flags |= Flags.global_header
        # PyAV opens codecs for slice threading, which has libx264 cut every picture into
        # slices coded in parallel (sliced_threads=1, a different bitstream); FFmpeg's
        # command line and x264 itself use frame threads. Frame threads cost about two
        # frames of delay and make the encoder's settings those of the bench reference.
        ctx.thread_type = "FRAME"
        ctx.options = x264_options(profile)
        ctx.open()
        self._ctx = ctx
        # One scaler for the encoder's life. ``VideoFrame.reformat`` keeps its scaler on
        # the source picture, so every decoded picture would build a new SwsContext
        # (filter tables, a thread pool): about 1 ms per rung and picture at 720p, twice
        # the scaling itself. Bilinear, PyAV's default and the bench reference's; one
        # thread, as the encoders already have the cores.
        self._scaler = VideoReformatter()
        self.config: CodecConfig = _config(bytes(ctx.extradata or b""), profile)

    def encode(self, frame: av.VideoFrame, pts: int, *, keyframe: bool = False) -> list[Frame]:
        """Encode one picture shown at ``pts`` (ticks); ``keyframe`` forces an IDR."""
        frame = self.scale(frame)
        frame.pts = pts
        frame.time_base = _TICKS
        frame.pict_type = PictureType.I if keyframe else PictureType.NONE
        return self._frames(self._ctx.encode(frame))

    def scale(self, frame: av.VideoFrame) -> av.VideoFrame:
        """``frame`` at the profile's size in yuv420p (itself when it already is)."""
        p = self.profile
        if frame.width == p.width and frame.height == p.height and frame.format.name == "yuv420p":
            return frame
        return self._scaler.reformat(
            frame, p.width, p.height, "yuv420p", interpolation=Interpolation.BILINEAR, threads=1
        )

    def flush(self) -> list[Frame]:
        """Drain the look-ahead at the end of the stream."""
        return self._frames(self._ctx.encode(None))

    @staticmethod
    def _frames(packets: list[av.Packet[Any]]) -> list[Frame]:
        out = []
        for packet in packets:
            if packet.pts is None:
                continue
            payload = annexb_to_length_prefixed(bytes(packet))
            out.append(
                Frame(
                    TrackKind.VIDEO,
                    Codec.H264,
                    packet.pts if packet.dts is None else packet.dts,
                    packet.pts,
                    packet.is_keyframe,
                    payload,
                )
            )
        return out


def _config(extradata: bytes, profile: VideoProfile) -> CodecConfig:
    """avcC from the encoder's global header (Annex B SPS/PPS from libx264, or already
    an avcC record from some hardware encoders); the frame rate is the profile's."""
    if extradata[:1] == b"\x01":
        config = h264.config_from_avcc(extradata)
    else:
        sps, pps = h264.parameter_sets(split_annexb(extradata))
        if not sps or not pps:
            raise ValueError(f"{profile.encoder} gave no SPS/PPS in its global header")
        config = h264.config_from_parameter_sets(sps, pps)
    # The SPS's timing info follows the 90 kHz time base (libx264 writes 90000 fps), not
    # the frame rate: the profile's rate is what the encoder is fed.
    return replace(config, fps=float(profile.fps))
