"""The playout worker process: open items with PyAV, conform them, encode, send Frames.

Runs in its own process (``server.encode.process.WorkerProcess``) so decoding and
encoding never hold the event loop. It keeps one ``Timeline`` across the items it is
given, so item after item continues the same output clock; it does no pacing: the
pipe to the event loop fills and ``send`` blocks, which is the back-pressure.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import replace
from fractions import Fraction
from multiprocessing.connection import Connection
from typing import Any

import av

from server.encode.audio import AudioEncoder, in_profile_format, layout_of
from server.encode.conform import letterbox
from server.encode.profile import AudioProfile, VideoProfile
from server.encode.video import VideoEncoder
from server.media import h264
from server.media.frame import TIMEBASE, CodecConfig, Frame, TrackKind
from server.playout import remux
from server.playout.interleave import Interleaver
from server.playout.messages import Batch, Configs, Drained, Ended, Finish, Play, Started
from server.playout.ports import Profile
from server.playout.timeline import AUDIO_LAG_WITH_TRACK, FrameRate, Timeline

log = logging.getLogger("relaycast.playout")

BATCH_FRAMES = 16
"""Frames per message: fewer pickles per second, still a small share of the look-ahead."""

FRAME_THREADS_ABOVE = 1920 * 1080
"""Pictures larger than this (pixels) are decoded with frame threads; up to 1080p one
thread decodes (slice threads where the stream has slices)."""


def decode_threads(width: int, height: int) -> str:
    """PyAV ``thread_type`` for an item's decoder. A channel decodes in real time, not
    flat out: frame threads buy throughput it does not need up to 1080p (one core
    decodes H.264 1080p several times faster than real time) and cost CPU to hand
    pictures between threads (~15 % more decode CPU measured on 540p and 360p items).
    Larger items keep them, so that a 4K item still decodes in time."""
    return "AUTO" if width * height > FRAME_THREADS_ABOVE else "SLICE"


class ItemBroken(Exception):
    """The item cannot be played (no video, unreadable, decode error)."""


def main(conn: Connection, profile: Profile, encoder: str, preset: str) -> None:
    """Child entry (``WorkerProcess`` target): serve ``Play``/``Finish`` until EOF."""
    _Worker(conn, profile, encoder, preset).serve()


class _Worker:
    def __init__(self, conn: Connection, profile: Profile, encoder: str, preset: str) -> None:
        self.conn = conn
        self.video_profile = VideoProfile(
            profile.width,
            profile.height,
            Fraction(profile.fps),
            profile.video_bitrate,
            encoder=encoder,
            preset=preset,
        )
        self.audio_profile = AudioProfile(bitrate=profile.audio_bitrate)
        self.fps = profile.fps
        self.gen = -1
        self.timeline = Timeline(profile.fps, 0, 0)
        self.venc: VideoEncoder | None = None
        self.aenc: AudioEncoder | None = None
        self.configs: Configs | None = None
        """The codec configs last sent (the encoders', or a remuxed item's)."""
        self.param_sets = b""
        """Their SPS and PPS, length-prefixed, put in front of every keyframe."""
        self.out: list[Frame] = []
        """What the encoders gave, not yet in timestamp order."""
        self.mux = Interleaver()
        self.ready: list[Frame] = []
        """In order across tracks, waiting to fill a batch."""
        self.starts: deque[Started] = deque()
        """Items begun whose first picture has not left yet: each ``Started`` goes out
        just before it, after the previous item's last frames (still in the encoder
        when the new item is opened), so the event loop changes ``nowPlaying`` and
        cuts a skip at the picture where the item really begins."""

    def serve(self) -> None:
        message: Any = self.conn.recv()
        while True:
            if isinstance(message, Play):
                message = self.play(message)
            elif isinstance(message, Finish):
                self.finish(message)
                message = None
            if message is None:
                message = self.conn.recv()

    # ------------------------------------------------------------ items

    def play(self, play: Play) -> object | None:
        """Play one item; returns a message that interrupted it (a new generation)."""
        if play.fresh or play.gen != self.gen:
            self.gen = play.gen
            self.venc = self.aenc = None
            self.configs = None
            self.timeline = Timeline(self.fps, play.video_at, play.audio_at)
            self._discard()
        error = None
        try:
            interrupted = self._item(play)
        except (ItemBroken, av.FFmpegError, OSError, ValueError) as exc:
            interrupted, error = None, _reason(exc, play.path)
            self._never_shown(play.item_id)
        if interrupted is not None:
            self._discard()
            return interrupted
        self._silence(self.timeline.close_item())
        self._send(force=True)
        self.conn.send(Ended(self.gen, play.item_id, self.timeline.video_end, error))
        return None

    def _item(self, play: Play) -> object | None:
        with av.open(play.path) as container:
            if not container.streams.video:
                raise ItemBroken("no video track")
            video = container.streams.video[0]
            audio = container.streams.audio[0] if container.streams.audio else None
            config = (
                remux.matching(video, audio, self.video_profile, self.audio_profile.bitrate)
                if play.start == 0
                else None
            )
            if config is not None and audio is not None:
                return self._remux(play, container, video, audio, config)
            self._encoders()
            video.thread_type = decode_threads(
                video.codec_context.width, video.codec_context.height
            )
            if play.start > 0:
                container.seek(int(play.start * av.time_base))
            self.starts.append(Started(self.gen, play.item_id, self.timeline.video_end, play.start))
            item = _Item(self, play.start, has_audio=audio is not None)
            streams = [video] if audio is None else [video, audio]
            for packet in container.demux(*streams):
                for frame in packet.decode():
                    if isinstance(frame, av.VideoFrame):
                        item.video(frame)
                    elif isinstance(frame, av.AudioFrame):
                        item.audio(frame)
                if self._send() and self.conn.poll():
                    interrupting: object = self.conn.recv()
                    return interrupting
            item.close()
        return None

    def _encoders(self) -> None:
        """Encoders for a conformed item: new ones after a remuxed item (its frames went
        out as they were; the encoders' own config comes back)."""
        if self.venc is None or self.aenc is None:
            self._send(force=True, drain=True)  # a remuxed item's last frames, its config
            self.venc = VideoEncoder(self.video_profile)
            self.aenc = AudioEncoder(self.audio_profile)
            self.aenc.reset(round(self.timeline.audio_end))
        self._announce(Configs(self.gen, self.venc.config, self.aenc.config))

    def _announce(self, configs: Configs) -> None:
        if configs != self.configs:
            self.configs = configs
            self.param_sets = in_band(configs.video)
            self.conn.send(configs)

    def _remux(
        self,
        play: Play,
        container: av.container.InputContainer,
        video: av.VideoStream,
        audio: av.AudioStream,
        config: CodecConfig,
    ) -> object | None:
        """An item that already is the profile: its packets go out as they are, on the
        channel's timeline (no decoding, no encoding)."""
        if self.venc is not None and self.aenc is not None:
            self.out.extend(self.venc.flush())  # the previous item's last frames
            end = round(self.timeline.audio_end)  # past it: the AAC encoder's padding
            self.out.extend(f for f in self.aenc.flush() if f.pts < end)
        self._send(force=True, drain=True)
        self.venc = self.aenc = None
        self._announce(Configs(self.gen, config, remux.encoder_config(self.audio_profile)))
        self.starts.append(Started(self.gen, play.item_id, self.timeline.video_end, 0.0, True))
        item = remux.Remuxed(self.timeline, self.audio_profile.bitrate)
        for packet in container.demux(video, audio):
            self.out.extend(item.video(packet) if packet.stream is video else item.audio(packet))
            if self._send() and self.conn.poll():
                interrupting: object = self.conn.recv()
                return interrupting
        self.out.extend(item.close())
        return None

    def finish(self, finish: Finish) -> None:
        if finish.gen == self.gen:
            if self.venc is not None:
                self.out.extend(self.venc.flush())
            if self.aenc is not None:
                self.out.extend(self.aenc.flush())
            self._send(force=True, drain=True)
        self.conn.send(Drained(finish.gen))

    # ------------------------------------------------------------ output

    def _silence(self, ticks: int) -> None:
        if ticks > 0 and self.aenc is not None:
            self.out.extend(self.aenc.silence(ticks))

    def _send(self, force: bool = False, drain: bool = False) -> bool:
        """Batch what is in order; ``drain``: everything (the encoders are flushed).

        True when a message went out: the moment to look for the event loop's (a
        look per demuxed packet was a ``poll`` system call and a selector each time;
        messages go out every ``BATCH_FRAMES`` frames, and the pipe's back-pressure
        holds the worker in ``send`` until the event loop reads)."""
        if not (self.out or force or drain):
            return False  # nothing new: the interleaver's answer is the same
        sent = False
        if self.out:
            self.mux.add([self._with_param_sets(f) for f in self.out])
            self.out = []
        for frame in self.mux.drain() if drain else self.mux.ready():
            starts = self.starts
            while starts and frame.track is TrackKind.VIDEO and frame.pts >= starts[0].video_pts:
                self._batch()
                self.conn.send(starts.popleft())
                sent = True
            self.ready.append(frame)
        if force or len(self.ready) >= BATCH_FRAMES:
            sent = self._batch() or sent
        if drain:
            while self.starts:
                self.conn.send(self.starts.popleft())
                sent = True
        return sent

    def _with_param_sets(self, frame: Frame) -> Frame:
        """Keyframes carry SPS/PPS in band: a player that keeps the first codec config
        across a remuxed item's (FFmpeg's HLS reader does) still decodes after it."""
        if frame.keyframe and frame.track is TrackKind.VIDEO and self.param_sets:
            return replace(frame, payload=self.param_sets + frame.payload)
        return frame

    def _batch(self) -> bool:
        if not self.ready:
            return False
        self.conn.send(Batch(self.gen, self.ready))
        self.ready = []
        return True

    def _never_shown(self, item_id: str) -> None:
        """A broken item whose first picture never left is not announced as on air."""
        self.starts = deque(s for s in self.starts if s.item_id != item_id)

    def _discard(self) -> None:
        """A new generation: what the old one encoded is never sent."""
        self.out.clear()
        self.mux.clear()
        self.ready.clear()
        self.starts.clear()


class _Item:
    """One item's conforming: frame rate by timestamp, letterbox, audio kept level."""

    def __init__(self, worker: _Worker, start: float, has_audio: bool) -> None:
        self.w = worker
        self.start = start
        self.start_ticks = round(start * TIMEBASE)
        self.has_audio = has_audio
        self.origin = worker.timeline.video_end  # the item's time ``start`` is shown here
        self.lag = round(AUDIO_LAG_WITH_TRACK * TIMEBASE) if has_audio else 0
        self.rate = FrameRate(worker.fps)
        self.current: av.VideoFrame | None = None
        self.boxed: av.VideoFrame | None = None
        self.last_end = 0.0
        self.first = True
        self.resampler: av.AudioResampler | None = None
        """Made for the first audio frame that is not already the profile's format."""
        self.video_time_base: float | None = None
        """Seconds per unit of the video frames' durations (read once per item)."""
        self.audio_time_base: tuple[int, int] | None = None
        """The audio frames' time base (num, den): PyAV builds a ``Fraction`` per read."""

    def video(self, frame: av.VideoFrame) -> None:
        if frame.time is None:
            return
        t = frame.time - self.start
        count = self.rate.frame(t)
        if count:
            self._show(self.current if self.current is not None else frame, count)
        if self.current is not frame:
            self.current, self.boxed = frame, None
        if self.video_time_base is None:
            time_base = frame.time_base
            self.video_time_base = float(time_base) if time_base else 0.0
        duration = frame.duration * self.video_time_base if frame.duration else 0.0
        self.last_end = max(self.last_end, t + (duration or 1 / self.w.fps))

    def _show(self, frame: av.VideoFrame, count: int) -> None:
        w = self.w
        assert w.venc is not None
        if frame is not self.current or self.boxed is None:
            boxed = letterbox(frame, w.video_profile.width, w.video_profile.height)
            if frame is self.current:
                self.boxed = boxed
        else:
            boxed = self.boxed
        for _ in range(count):
            w.out.extend(w.venc.encode(boxed, w.timeline.take_slot(), keyframe=self.first))
            self.first = False
        self._level()

    def _level(self) -> None:
        """Keep the audio near the video: silence for an item without audio, or where
        the item's audio has fallen far behind (a gap)."""
        timeline = self.w.timeline
        self.w._silence(timeline.silence_until(timeline.video_end - self.lag))

    def audio(self, frame: av.AudioFrame) -> None:
        pts, rate = frame.pts, frame.sample_rate
        if pts is None or rate <= 0:
            return
        if self.audio_time_base is None:
            time_base = frame.time_base
            if time_base is None:
                return
            self.audio_time_base = (time_base.numerator, time_base.denominator)
        num, den = self.audio_time_base
        # where the frame belongs on the output, in whole ticks (floor): integer maths,
        # exact for the usual 1/sample_rate time bases
        offset = pts * num * TIMEBASE // den - self.start_ticks
        if offset + frame.samples * TIMEBASE // rate <= 0:
            return  # before the resume point
        verdict, silence = self.w.timeline.audio_verdict(self.origin + offset)
        if verdict == "drop":
            return
        self.w._silence(silence)
        self._feed(self._conformed(frame))

    def _conformed(self, frame: av.AudioFrame) -> list[av.AudioFrame]:
        """``frame`` in the profile's sample format, layout and rate. A frame that
        already is goes as it is (AAC decodes to fltp; most items are 48 kHz stereo),
        as long as the resampler holds nothing of earlier frames."""
        profile = self.w.audio_profile
        if self.resampler is None and in_profile_format(frame, profile):
            return [frame]
        if self.resampler is None:
            self.resampler = av.AudioResampler(
                format="fltp", layout=layout_of(profile), rate=profile.sample_rate
            )
        return self.resampler.resample(frame)

    def _feed(self, frames: list[av.AudioFrame]) -> None:
        w = self.w
        assert w.aenc is not None
        for resampled in frames:
            w.timeline.audio_fed(resampled.samples, resampled.sample_rate)
            w.out.extend(w.aenc.encode(resampled))

    def close(self) -> None:
        """The item's end: the last frame fills up to it, the audio's tail is fed."""
        if self.current is not None:
            count = self.rate.end(self.last_end)
            if count:
                self._show(self.current, count)
        if self.has_audio and self.resampler is not None:
            self._feed(self.resampler.resample(None))


def _reason(exc: BaseException, path: str) -> str:
    """One line for the webhook and the log; the server's file system path (FFmpeg puts
    it in its messages) is not for webhook receivers."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text.replace(repr(path), "the file").replace(path, "the file")[:300]


def in_band(config: CodecConfig) -> bytes:
    """SPS and PPS of an avcC config as 4-byte length-prefixed NAL units."""
    avcc = h264.parse_avcc(config.extradata)
    return b"".join(len(nal).to_bytes(4, "big") + nal for nal in (*avcc.sps, *avcc.pps))
