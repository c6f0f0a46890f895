"""What playout needs from persistent state, declared here, implemented by the store.

The media plane never imports the control plane: the composition root hands the
playout service an object that satisfies ``ChannelDirectory``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from server.bus import StreamGrant
from server.playout.schedule import Schedule


@dataclass(frozen=True, slots=True)
class Profile:
    """The one output every item is conformed to."""

    width: int
    height: int
    fps: int
    video_bitrate: int
    audio_bitrate: int


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """A queue item as playout sees it: the file and where it sits in the queue."""

    item_id: str
    media_id: str
    path: Path
    position: int
    duration: float | None = None


@dataclass(frozen=True, slots=True)
class PlayoutState:
    """Where a channel is: the item, seconds into it, and how often the queue looped."""

    item_id: str | None = None
    position: float = 0.0
    loops: int = 0


@dataclass(frozen=True, slots=True)
class Channel:
    stream_id: str
    environment_id: str
    enabled: bool
    loop: bool
    profile: Profile
    schedule: Schedule
    on: bool
    """Playing (started by hand or by its schedule) when the process last ran."""
    window_start: datetime | None
    """The schedule window it last started in (each window plays once)."""
    state: PlayoutState


class ChannelDirectory(Protocol):
    async def channel(self, stream_id: str) -> Channel | None:
        """The channel's settings and saved state; None for an unknown stream or an encoder's."""

    async def channels(self) -> list[Channel]:
        """Every channel that is on or has a schedule (what the scheduler looks at)."""

    async def grant(self, stream_id: str) -> StreamGrant | None:
        """The stream's grant, as ingest would resolve its key."""

    async def queue(self, stream_id: str) -> list[QueueEntry]:
        """The queue in order, ready items only."""

    async def set_on(self, stream_id: str, on: bool, window_start: datetime | None) -> None:
        """Remember whether the channel plays (and for which window) across restarts."""

    async def save_state(self, stream_id: str, state: PlayoutState) -> None:
        """The playout position, saved every few seconds."""

    async def item_started(self, stream_id: str, entry: QueueEntry) -> None:
        """An item is on air (webhook ``channel.item.started``)."""

    async def item_failed(self, stream_id: str, entry: QueueEntry, reason: str) -> None:
        """An item could not be played and was skipped (webhook ``channel.item.failed``)."""
