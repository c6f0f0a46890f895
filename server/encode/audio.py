"""AAC-LC encoding to bus Frames on a timeline of its own.

Audio is stamped from a sample counter, not from the input's timestamps: a channel
switching files or a source with jittery audio clocks still gives outputs packets that
are exactly one frame apart, which is what keeps a long playout free of A/V drift.
The encoder's priming frame is stamped like any other, so the audio plays about 21 ms
(1024 samples) late, a constant offset well under one video frame.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av

from server.encode.profile import AudioProfile
from server.media.aac import config_from_asc
from server.media.frame import TIMEBASE, Codec, CodecConfig, Frame, TrackKind

SAMPLES_PER_FRAME = 1024
_LAYOUTS = {1: "mono", 2: "stereo"}


def layout_of(profile: AudioProfile) -> str:
    """The channel layout name the profile's encoder takes."""
    return _LAYOUTS[profile.channels]


def in_profile_format(frame: av.AudioFrame, profile: AudioProfile) -> bool:
    """Whether ``frame`` already has the sample format (planar float, what the AAC
    encoder takes and an AAC decoder gives), rate and layout of ``profile``: such
    frames need no resampler's filter graph (~10 us a frame)."""
    return (
        frame.sample_rate == profile.sample_rate
        and frame.format.name == "fltp"
        and frame.layout.name == layout_of(profile)
    )


class AudioEncoder:
    """Any audio in (resampled to the profile), AAC Frames out."""

    def __init__(self, profile: AudioProfile) -> None:
        self.profile = profile
        layout = layout_of(profile)
        ctx = av.CodecContext.create("aac", "w")
        assert isinstance(ctx, av.AudioCodecContext)
        ctx.sample_rate = profile.sample_rate
        ctx.layout = layout
        ctx.format = "fltp"
        ctx.bit_rate = profile.bitrate
        ctx.time_base = Fraction(1, profile.sample_rate)
        ctx.open()
        self._time_base = ctx.time_base  # read once: each read builds a Fraction
        self._ctx = ctx
        self._resampler = av.AudioResampler(
            format="fltp", layout=layout, rate=profile.sample_rate, frame_size=SAMPLES_PER_FRAME
        )
        self._held: int | None = 0
        """Samples the resampler holds (None: unknown, it converted a rate or format)."""
        self.config: CodecConfig = config_from_asc(bytes(ctx.extradata or b""))
        self._origin: int | None = None
        self._samples_in = 0  # fed to the encoder since the start
        self._packets_out = 0  # since the last reset

    def encode(self, frame: av.AudioFrame, pts: int | None = None) -> list[Frame]:
        """Encode ``frame``; ``pts`` (ticks) only sets where the timeline starts.

        A frame that already is one AAC frame of the profile's format (what an AAC
        decoder gives, and a channel's items mostly are) skips the resampler's filter
        graph, ~10 us a frame, when the resampler holds nothing of earlier frames, so
        the samples stay in order."""
        if self._origin is None:
            self._origin = pts or 0
        fits = self._held is not None and in_profile_format(frame, self.profile)
        if fits and self._held == 0 and frame.samples == SAMPLES_PER_FRAME:
            return self._encode_one(frame)
        out: list[Frame] = []
        resampled = self._resampler.resample(frame)
        if fits and self._held is not None:
            self._held += frame.samples - sum(f.samples for f in resampled)
        else:
            self._held = None
        for one in resampled:
            out.extend(self._encode_one(one))
        return out

    def silence(self, duration_ticks: int) -> list[Frame]:
        """Encoded silence lasting ``duration_ticks`` (rounded to whole AAC frames)."""
        rate = self.profile.sample_rate
        frames = max(0, round(duration_ticks * rate / (TIMEBASE * SAMPLES_PER_FRAME)))
        if self._origin is None:
            self._origin = 0
        out: list[Frame] = []
        for _ in range(frames):
            out.extend(self._encode_one(self._silent_frame()))
        return out

    def reset(self, pts: int) -> None:
        """The next packet out is stamped ``pts``: the caller jumped on its timeline."""
        self._origin = pts
        self._packets_out = 0

    def flush(self) -> list[Frame]:
        """Drain the resampler and encoder at the end of the stream."""
        out: list[Frame] = []
        for resampled in self._resampler.resample(None):
            out.extend(self._encode_one(resampled))
        self._held = 0
        out.extend(self._stamp(self._ctx.encode(None)))
        return out

    def _encode_one(self, frame: av.AudioFrame) -> list[Frame]:
        frame.pts = self._samples_in
        frame.time_base = self._time_base
        self._samples_in += frame.samples
        return self._stamp(self._ctx.encode(frame))

    def _stamp(self, packets: list[av.Packet[Any]]) -> list[Frame]:
        origin = self._origin or 0
        rate = self.profile.sample_rate
        out = []
        for packet in packets:
            ticks = origin + self._packets_out * SAMPLES_PER_FRAME * TIMEBASE // rate
            self._packets_out += 1
            out.append(Frame(TrackKind.AUDIO, Codec.AAC, ticks, ticks, True, bytes(packet)))
        return out

    def _silent_frame(self) -> av.AudioFrame:
        layout = layout_of(self.profile)
        frame = av.AudioFrame(format="fltp", layout=layout, samples=SAMPLES_PER_FRAME)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate = self.profile.sample_rate
        return frame
