"""The media plane's state of one open session, and its reconnect window.

A session outlives its encoder's connection: an encoder that drops may come back
within the stream's reconnect window and continue the same session (the viewers see
a discontinuity, not an end). ``Live`` holds what must survive that gap, including
the last publisher's figures, which health keeps showing while it is away.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from server.bus import Stream, StreamGrant
from server.ingest.health import IngestMeter
from server.ingest.ports import Publisher
from server.logfields import media_fields


class OpenSession(NamedTuple):
    session_id: str
    bytes_in: int
    last_seen: datetime


def connection_id(publisher: Publisher | None) -> str | None:
    """Publishers that carry a ``connection_id`` (RTMP does) get it on manager lines."""
    found = getattr(publisher, "connection_id", None)
    return found if isinstance(found, str) else None


@dataclass(eq=False)
class Live:
    """The media plane's state of one stream with an open session."""

    grant: StreamGrant
    stream: Stream
    session_id: str = ""
    publisher: Publisher | None = None
    meter: IngestMeter = field(default_factory=IngestMeter)
    session_bytes: int = 0
    live: bool = False
    connected_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    grace: asyncio.TimerHandle | None = None
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    last_publisher: Publisher | None = None
    """The publisher that held the stream last: health shows its figures while it is
    away inside the reconnect window."""
    left_at: datetime | None = None
    left_clock: float = 0.0

    def log_fields(self, publisher: Publisher | None = None) -> dict[str, str]:
        """The log ids of a stream's line: its session and the connection concerned."""
        who = publisher if publisher is not None else self.publisher
        return media_fields(self.grant.stream_id, self.session_id, connection_id(who))

    def drop_publisher(self, clock: float) -> Publisher | None:
        """The encoder left (or was put out): remember what it was and when."""
        publisher, self.publisher = self.publisher, None
        if publisher is not None:
            self.last_publisher = publisher
            self.left_at, self.left_clock = datetime.now(UTC), clock
        return publisher

    def open_window(self, expire: Callable[[], object]) -> None:
        """Wait for the encoder to come back: ``expire`` runs when the stream's
        reconnect window is over. A window already open keeps its deadline."""
        if self.grace is None:
            window = self.grant.reconnect_window_seconds
            self.grace = asyncio.get_running_loop().call_later(window, expire)

    def close_window(self) -> bool:
        """The encoder is back or the session ends; True when a window was open."""
        if self.grace is None:
            return False
        self.grace.cancel()
        self.grace = None
        return True
