"""Decode once, encode every rung: the work of one transcoded stream (in its worker).

Kept free of the pipe so it can be driven in-process by the tests. Each decoded picture
goes to every rung's encoder at the source's pts (timestamps carried through), as a
forced keyframe exactly where the source had one, so every rendition's segments can be
cut at the same presentation times as the source's. A rung with a lower frame rate
drops pictures between kept ones, never a keyframe. AAC audio is passed through; other
audio is decoded and encoded to AAC once for all rungs. Audio leaves the worker only
once the video has been output up to its time, so each rendition stays interleaved.
"""

from __future__ import annotations

from collections import deque
from fractions import Fraction
from typing import Any

import av

from server.encode import AudioEncoder, AudioProfile, VideoEncoder, VideoProfile
from server.media.frame import TIMEBASE, Codec, CodecConfig, Frame, TrackKind

from .ladder import Rendition
from .messages import AUDIO, Batch, Job

_DECODERS: dict[str, str] = {
    Codec.H264: "h264",
    Codec.H265: "hevc",
    Codec.AV1: "libdav1d",
    Codec.VP9: "vp9",
}
_AUDIO_DECODERS: dict[str, str] = {Codec.OPUS: "opus", Codec.AAC: "aac"}
_TICKS = Fraction(1, TIMEBASE)
MAX_HELD_AUDIO = 512
"""Audio frames waiting for the video to catch up, at most (about 10 s of AAC)."""
_NEVER = 1 << 62
MAX_KEY_TIMES = 64
"""Source keyframe times remembered until their picture comes out of the decoder."""


def _decoder(config: CodecConfig) -> Any:
    """A decoder context (video or audio: PyAV's own types differ, we use ``decode``)."""
    names: dict[str, str] = _AUDIO_DECODERS if config.track is TrackKind.AUDIO else _DECODERS
    name = names.get(config.codec)
    if name is None:
        raise ValueError(f"no decoder for {config.codec}")
    ctx = av.CodecContext.create(name, "r")
    if config.extradata:
        ctx.extradata = config.extradata
    return ctx


def _packet(frame: Frame) -> av.Packet[Any]:
    packet = av.Packet(frame.payload)
    packet.pts, packet.dts, packet.time_base = frame.pts, frame.dts, _TICKS
    return packet


class _Rung:
    """One rendition's encoder and frame-rate decimation."""

    def __init__(self, rendition: Rendition, job: Job) -> None:
        fps = rendition.fps or Fraction(round(rendition.max_fps))
        self.encoder = VideoEncoder(
            VideoProfile(
                width=rendition.width,
                height=rendition.height,
                fps=fps,
                bitrate=rendition.bitrate,
                encoder=job.encoder,
                preset=job.preset,
                keyint_seconds=job.keyint_seconds,
            )
        )
        # Pictures closer than 3/4 of the output interval to the last kept one are
        # dropped: 60 -> 30 fps keeps every other picture on the source's timestamps.
        self._min_gap = round(TIMEBASE / fps * 3 / 4) if rendition.fps else 0
        self._last: int | None = None
        self.shown: int | None = None  # pts of the newest picture output

    def encode(self, picture: av.VideoFrame, pts: int, keyframe: bool) -> list[Frame]:
        last = self._last
        if not keyframe and last is not None and 0 <= pts - last < self._min_gap:
            return []
        self._last = pts
        frames = self.encoder.encode(picture, pts, keyframe=keyframe)
        if frames:
            self.shown = max(f.pts for f in frames)
        return frames


class Pipeline:
    """One stream's decoders and rung encoders (see the module docstring)."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self._video = _decoder(job.video)
        self._rungs = [_Rung(r, job) for r in job.renditions]
        self._keys: deque[int] = deque(maxlen=MAX_KEY_TIMES)
        self._audio_passthrough = job.audio is not None and job.audio.codec == Codec.AAC
        self._audio_decoder = (
            _decoder(job.audio) if job.audio is not None and not self._audio_passthrough else None
        )
        self._audio_encoder = (
            AudioEncoder(AudioProfile(bitrate=job.audio_bitrate))
            if self._audio_decoder is not None
            else None
        )
        self._held: deque[Frame] = deque()
        self.dropped_audio = 0

    @property
    def video_configs(self) -> tuple[CodecConfig, ...]:
        return tuple(r.encoder.config for r in self._rungs)

    @property
    def audio_config(self) -> CodecConfig | None:
        if self._audio_encoder is not None:
            return self._audio_encoder.config
        return self.job.audio if self._audio_passthrough else None

    def feed(self, frame: Frame) -> Batch:
        """Take one source frame; what the encoders output meanwhile."""
        batch = Batch()
        if frame.track is TrackKind.VIDEO:
            self._video_frame(frame, batch)
        elif frame.track is TrackKind.AUDIO:
            self._audio_frame(frame)
        self._release_audio(batch)
        return batch

    def config(self, config: CodecConfig) -> None:
        """A new source configuration (same size: the rungs stay as they are)."""
        if config.track is TrackKind.VIDEO:
            self._video = _decoder(config)
            self._keys.clear()

    def restart(self) -> Batch:
        """The source's timestamps restarted: decoders start over, audio is flushed."""
        self._video = _decoder(self.job.video)
        self._keys.clear()
        batch = Batch(restarted=True)
        batch.frames.extend((AUDIO, f) for f in self._held)
        self._held.clear()
        return batch

    def _video_frame(self, frame: Frame, batch: Batch) -> None:
        if frame.keyframe:
            self._keys.append(frame.pts)
        for picture in self._video.decode(_packet(frame)):
            pts = picture.pts
            if pts is None:
                continue
            keyframe = pts in self._keys
            while keyframe and self._keys and self._keys[0] <= pts:
                self._keys.popleft()
            out = [
                (i, f)
                for i, rung in enumerate(self._rungs)
                for f in rung.encode(picture, pts, keyframe)
            ]
            if out:  # audio that plays before these pictures goes ahead of them, as a muxer
                keys = [f.dts for _, f in out if f.keyframe]
                if keys:  # a cut: ahead of it in every rung, even one whose video is behind
                    self._release_audio(batch, before=min(keys), caught_up=False)
                self._release_audio(batch, before=min(f.dts for _, f in out))
            batch.frames.extend(out)
        shown = [r.shown for r in self._rungs]
        if shown and None not in shown:
            batch.shown = min(s for s in shown if s is not None)

    def _audio_frame(self, frame: Frame) -> None:
        if self._audio_passthrough:
            self._hold(frame)
            return
        if self._audio_decoder is None or self._audio_encoder is None:
            return
        for samples in self._audio_decoder.decode(_packet(frame)):
            for encoded in self._audio_encoder.encode(samples, frame.pts):
                self._hold(encoded)

    def _hold(self, frame: Frame) -> None:
        if len(self._held) >= MAX_HELD_AUDIO:
            self._held.popleft()
            self.dropped_audio += 1
        self._held.append(frame)

    def _release_audio(
        self, batch: Batch, before: int | None = None, *, caught_up: bool = True
    ) -> None:
        """Audio up to the time every rendition's video has reached (``caught_up``) and,
        ``before``, only what plays before the pictures about to be added. In decode-time
        order with the pictures, as a muxer interleaves: the segmenters put audio in the
        part its time falls in (``server.hls.segmenter`` holds what comes early), and
        audio after the keyframe it precedes would land in the rendition's next segment,
        not the source's: a gap or overlap where a player switches renditions."""
        shown = [r.shown for r in self._rungs]
        if not shown or None in shown:
            return
        until = min(s for s in shown if s is not None) if caught_up else _NEVER
        held = self._held
        while held and held[0].pts <= until and (before is None or held[0].pts < before):
            batch.frames.append((AUDIO, held.popleft()))
