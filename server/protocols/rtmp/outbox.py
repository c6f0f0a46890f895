"""What a connection owes its caller: wire bytes, events, and whether to hang up.

The role sessions write here instead of holding a reference to the connection, so
that they stay small and testable and there is exactly one place that frames
outgoing messages (with the chunk size currently in force).
"""

from __future__ import annotations

from .chunk import DEFAULT_CHUNK_SIZE, encode_message
from .events import Event
from .messages import (
    CONTROL_CSID,
    MessageType,
    UserControlEvent,
    set_chunk_size,
    user_control,
)

COMMAND_CSID = 3
"""Chunk stream for commands (connection- and stream-level alike: we always send fmt 0)."""


class Outbox:
    """Queued output bytes and events, plus the closed flag."""

    __slots__ = ("_data", "chunk_size", "closed", "events")

    def __init__(self) -> None:
        self._data: list[bytes] = []
        self.events: list[Event] = []
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self.closed = False

    def write(self, data: bytes) -> None:
        """Queue bytes that are already framed (handshake, pre-chunked media)."""
        if data:
            self._data.append(data)

    def send(self, csid: int, type_id: int, stream_id: int, timestamp: int, payload: bytes) -> None:
        """Frame and queue one message with the current outgoing chunk size."""
        self._data.append(
            encode_message(csid, type_id, stream_id, timestamp, payload, self.chunk_size)
        )

    def control(self, type_id: MessageType, payload: bytes) -> None:
        self.send(CONTROL_CSID, int(type_id), 0, 0, payload)

    def user_control(self, event: UserControlEvent, *values: int) -> None:
        self.control(MessageType.USER_CONTROL, user_control(event, *values))

    def command(self, payload: bytes, stream_id: int = 0) -> None:
        self.send(COMMAND_CSID, int(MessageType.COMMAND_AMF0), stream_id, 0, payload)

    def set_chunk_size(self, size: int) -> None:
        """Announce and start using a new outgoing chunk size (order matters: the
        announcement itself still goes out with the old size)."""
        self.control(MessageType.SET_CHUNK_SIZE, set_chunk_size(size))
        self.chunk_size = size

    def emit(self, event: Event) -> None:
        self.events.append(event)

    @property
    def pending(self) -> bool:
        """True when bytes are queued (cheaper than draining an empty queue)."""
        return bool(self._data)

    def drain_data(self) -> bytes:
        queued = self._data
        if not queued:  # the common case on a publisher's connection: nothing to say
            return b""
        data = queued[0] if len(queued) == 1 else b"".join(queued)
        queued.clear()
        return data

    def drain_events(self) -> list[Event]:
        events = self.events
        if events:
            self.events = []
        else:
            events = []
        return events
