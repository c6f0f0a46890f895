"""A publisher's handle on its stream: every media read and frame of every ingest
protocol goes through a ``Claim``.

Split from ``manager`` to be compiled with mypyc (``server/accel_modules.txt``, issue
20): ``received`` runs per read and ``frame`` per access unit, between the compiled
RTMP/FLV path, the compiled meter and the compiled bus. This source stays the
pure-Python reference; ``manager`` creates claims and re-exports the class. What a
claim asks of its manager is the small ``ClaimOwner`` protocol, so this module does
not import the manager (which imports it).
"""

from __future__ import annotations

from typing import Final, Protocol

from server.ingest import plan
from server.ingest.ports import Publisher
from server.ingest.sessions import Live
from server.media import vp9
from server.media.frame import Codec, CodecConfig, Frame, TrackKind

# Compiled, an enum member of an interpreted module (server.media.tracks) read in
# ``frame`` would be a class attribute lookup per frame; Final constants are C statics.
_VP9: Final = Codec.VP9
_DATA: Final = TrackKind.DATA


class ClaimOwner(Protocol):
    """What a claim needs from the ``IngestManager`` that granted it."""

    def clock(self) -> float:
        """Monotonic seconds: the claim's start, for the plan's settling period."""

    def fail(self, live: Live, reason: str) -> None:
        """The publisher broke the plan's limits: disconnect it, end in ``error``."""

    def went_live(self, live: Live) -> None:
        """The first media frame arrived."""


class Claim:
    """A publisher's handle on its stream: the hot path goes through here."""

    __slots__ = ("_checked_at", "_manager", "_started", "live", "publisher")

    def __init__(self, manager: ClaimOwner, live: Live, publisher: Publisher) -> None:
        self._manager = manager
        self.live = live
        self.publisher = publisher
        self._started = self._checked_at = manager.clock()

    @property
    def current(self) -> bool:
        return self.live.publisher is self.publisher

    def received(self, count: int, now: float) -> None:
        live = self.live
        if live.publisher is not self.publisher:
            return
        live.meter.add_bytes(count, now)
        live.session_bytes += count
        limits = live.grant.limits
        if limits is not None and now - self._checked_at >= 1.0:
            self._checked_at = now
            violation = plan.rate_violation(limits, live.meter, now - self._started, now)
            if violation:
                self._manager.fail(live, violation)

    def config(self, config: CodecConfig) -> None:
        if not self.current:
            return
        limits = self.live.grant.limits
        violation = plan.config_violation(limits, config) if limits else None
        if violation:
            self._manager.fail(self.live, violation)
            return
        self.live.stream.set_config(config)

    def metadata(self, metadata: dict[str, object]) -> None:
        if self.current:
            self.live.stream.set_metadata(metadata)

    def tracks(self, tracks: frozenset[TrackKind]) -> None:
        """The tracks the source announced (PMT, onMetaData); HLS waits for them."""
        if self.current:
            self.live.stream.announce_tracks(tracks)

    def frame(self, frame: Frame) -> None:
        live = self.live
        if live.publisher is not self.publisher:
            return
        if frame.keyframe and frame.codec == _VP9:
            self._complete_vp9_config(frame)
        live.meter.add_frame(frame)
        live.stream.publish(frame)
        if not live.live and frame.track is not _DATA:
            self._manager.went_live(live)

    def _complete_vp9_config(self, frame: Frame) -> None:
        """vpcC has no picture size; the first keyframe tells it (health, HLS, plan)."""
        video = self.live.stream.video_config
        completed = vp9.with_keyframe_size(video, frame.payload) if video else None
        if completed is not None:
            self.config(completed)
