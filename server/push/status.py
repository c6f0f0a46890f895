"""What one destination is doing, as a small state machine with time passed in.

The API, the metrics and the webhooks all read :class:`DestinationStatus` snapshots
made here, so there is one source of truth for "is my YouTube push working". The
pusher reports transitions; this module decides counters, retry times and whether a
failure starts a new outage (which is what ``destination.error`` webhooks announce,
once per outage rather than once per failed retry).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .backoff import Backoff


class PushState(enum.StrEnum):
    IDLE = "idle"
    CONNECTING = "connecting"
    ACTIVE = "active"
    ERROR = "error"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class DestinationStatus:
    """A point-in-time view of one destination (times are epoch seconds)."""

    state: PushState
    last_error: str | None = None
    connected_at: float | None = None
    bytes_sent: int = 0
    reconnects: int = 0
    dropped_frames: int = 0
    next_retry_at: float | None = None


IDLE = DestinationStatus(PushState.IDLE)
DISABLED = DestinationStatus(PushState.DISABLED)


class PushStatus:
    """Mutable status of one destination across its connections.

    ``bytes_sent`` and ``dropped_frames`` add up over every connection of the
    destination in this session; the live connection's share is passed in when a
    snapshot is taken, so the hot path never touches this object.
    """

    def __init__(self, backoff: Backoff) -> None:
        self.backoff = backoff
        self.state = PushState.IDLE
        self.last_error: str | None = None
        self.connected_at: float | None = None
        self.next_retry_at: float | None = None
        self.reconnects = 0
        self.attempts = 0
        self.bytes_done = 0
        self.dropped_done = 0
        self._in_outage = False

    def connecting(self) -> None:
        """An attempt starts; every attempt after the first counts as a reconnect."""
        if self.attempts:
            self.reconnects += 1
        self.attempts += 1
        self.state = PushState.CONNECTING
        self.next_retry_at = None

    def active(self, now: float) -> None:
        self.state = PushState.ACTIVE
        self.connected_at = now
        self._in_outage = False
        self.backoff.connected(now)

    def connection_done(self, bytes_sent: int, dropped_frames: int) -> None:
        """Fold a finished connection's counters into the totals."""
        self.bytes_done += bytes_sent
        self.dropped_done += dropped_frames

    def failed(self, now: float, error: str) -> tuple[float, bool]:
        """The attempt or connection failed: (seconds until the retry, new outage?)."""
        delay = self.backoff.failed(now)
        new_outage = not self._in_outage
        self._in_outage = True
        self.state = PushState.ERROR
        self.last_error = error
        self.connected_at = None
        self.next_retry_at = now + delay
        return delay, new_outage

    def changed(self) -> None:
        """The destination's URL or key changed: retry at once, forget old failures."""
        self.backoff.reset()
        self._in_outage = False

    def finished(self) -> None:
        """The session ended and we unpublished: nothing to do until the next one."""
        self.state = PushState.IDLE
        self.connected_at = None
        self.next_retry_at = None

    def snapshot(self, live_bytes: int = 0, live_dropped: int = 0) -> DestinationStatus:
        return DestinationStatus(
            state=self.state,
            last_error=self.last_error,
            connected_at=self.connected_at,
            bytes_sent=self.bytes_done + live_bytes,
            reconnects=self.reconnects,
            dropped_frames=self.dropped_done + live_dropped,
            next_retry_at=self.next_retry_at,
        )
