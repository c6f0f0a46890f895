"""Items that already are the channel's profile go out as they are (remuxed).

An item is remuxed when its first video track is H.264 at exactly the profile's size
and frame rate (constant), without B-frames (so decode order is display order, as for
the channel's own encoder), with 4-byte NAL lengths, and its first audio track is AAC-LC
at 48 kHz stereo whose AudioSpecificConfig is byte for byte the one the channel's AAC
encoder writes; and only when it plays from its start (a resume mid-item is conformed).
Its packets then keep their bytes and get the channel's timestamps: one video slot per
frame, audio where the channel's audio has reached. The codec configuration changes to
the item's (HLS starts a discontinuity there; RTMP sends the new sequence header).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av

from server.encode.audio import AudioEncoder
from server.encode.profile import AudioProfile, VideoProfile
from server.media import h264
from server.media.frame import TIMEBASE, Codec, CodecConfig, Frame, TrackKind
from server.playout.timeline import AAC_FRAME_TICKS, Timeline

AAC_SAMPLES = 1024
_configs: dict[int, CodecConfig] = {}


def encoder_config(profile: AudioProfile) -> CodecConfig:
    """The config the channel's AAC encoder writes (computed once per bitrate)."""
    if profile.bitrate not in _configs:
        _configs[profile.bitrate] = AudioEncoder(profile).config
    return _configs[profile.bitrate]


def matching(
    video: av.VideoStream,
    audio: av.AudioStream | None,
    profile: VideoProfile,
    audio_bitrate: int = 128_000,
) -> CodecConfig | None:
    """The item's video config when the item can be remuxed, else None."""
    ctx = video.codec_context
    extradata = bytes(ctx.extradata or b"")
    if (
        audio is None
        or ctx.name != "h264"
        or (ctx.width, ctx.height) != (profile.width, profile.height)
        or video.average_rate is None
        or Fraction(video.average_rate) != profile.fps
        or getattr(ctx, "has_b_frames", True)
        or extradata[:1] != b"\x01"
        or len(extradata) < 5
        or extradata[4] & 3 != 3
    ):
        return None
    actx = audio.codec_context
    asc = encoder_config(AudioProfile(bitrate=audio_bitrate)).extradata
    if (
        actx.name != "aac"
        or actx.sample_rate != 48_000
        or actx.channels != 2
        or bytes(actx.extradata or b"") != asc
    ):
        return None
    try:
        config = h264.config_from_avcc(extradata)
    except ValueError:
        return None
    return CodecConfig(
        config.track,
        config.codec,
        config.extradata,
        config.width,
        config.height,
        config.profile,
        config.level,
        float(profile.fps),
    )


class Remuxed:
    """One remuxed item's packets on the channel's timeline."""

    def __init__(self, timeline: Timeline, audio_bitrate: int) -> None:
        self.timeline = timeline
        self.origin = timeline.video_end
        self.silent = silent_packet(audio_bitrate)

    def video(self, packet: av.Packet[Any]) -> list[Frame]:
        if packet.size == 0 or packet.pts is None:
            return []
        pts = self.timeline.take_slot()
        return [Frame(TrackKind.VIDEO, Codec.H264, pts, pts, packet.is_keyframe, bytes(packet))]

    def audio(self, packet: av.Packet[Any]) -> list[Frame]:
        """Audio where its packet belongs relative to the item's start; a packet that
        would push the audio ahead (overlap) is dropped, a gap is filled with silence."""
        if packet.size == 0 or packet.pts is None or packet.time_base is None:
            return []
        t = float(packet.pts * packet.time_base)
        target = self.origin + Fraction(t).limit_denominator(10**6) * TIMEBASE
        verdict, ticks = self.timeline.audio_verdict(Fraction(target))
        if verdict == "drop":
            return []
        out = self._silence(ticks)
        pts = round(self.timeline.audio_end)
        self.timeline.audio_fed(AAC_SAMPLES, 48_000)
        return [*out, Frame(TrackKind.AUDIO, Codec.AAC, pts, pts, True, bytes(packet))]

    def close(self) -> list[Frame]:
        return self._silence(self.timeline.close_item())

    def _silence(self, ticks: int) -> list[Frame]:
        """``ticks`` of silence the timeline has just counted, as AAC frames."""
        start = self.timeline.audio_end - ticks
        return [
            Frame(TrackKind.AUDIO, Codec.AAC, pts, pts, True, self.silent)
            for pts in (round(start + k * AAC_FRAME_TICKS) for k in range(ticks // AAC_FRAME_TICKS))
        ]


_silent: dict[int, bytes] = {}


def silent_packet(bitrate: int) -> bytes:
    """One AAC frame of digital silence from the channel's own encoder (past its
    priming, every silent frame is the same bytes)."""
    if bitrate not in _silent:
        encoder = AudioEncoder(AudioProfile(bitrate=bitrate))
        frames = encoder.silence(8 * AAC_FRAME_TICKS) + encoder.flush()
        _silent[bitrate] = frames[4].payload
    return _silent[bitrate]
