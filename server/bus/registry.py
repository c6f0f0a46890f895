"""Live streams by id, so outputs (HLS, push, record) can find the stream they serve.

Only live runtime state lives here; whether a stream id may publish at all is decided by
the control plane before ``create`` is called.
"""

from __future__ import annotations

from collections.abc import Iterator

from .errors import StreamExistsError
from .limits import StreamLimits
from .stream import Stream


class Registry:
    """Map of stream id to live ``Stream``; one per media plane."""

    __slots__ = ("_limits", "_streams")

    def __init__(self, limits: StreamLimits | None = None) -> None:
        self._limits = limits or StreamLimits()
        self._streams: dict[str, Stream] = {}

    def create(self, stream_id: str, *, limits: StreamLimits | None = None) -> Stream:
        """Register a new live stream; an id that is still live raises StreamExistsError.

        (A publisher reconnecting inside the reconnect window should ``get`` the existing
        stream and call ``mark_discontinuity`` on it instead.)
        """
        if stream_id in self._streams:
            raise StreamExistsError(f"stream {stream_id!r} is already live")
        stream = Stream(stream_id, limits or self._limits)
        self._streams[stream_id] = stream
        return stream

    def get(self, stream_id: str) -> Stream | None:
        """The live stream with this id, or None."""
        return self._streams.get(stream_id)

    def remove(self, stream_id: str, *, reason: str = "stream removed") -> Stream | None:
        """Unregister a stream and end it (readers get an end marker); returns it or None."""
        stream = self._streams.pop(stream_id, None)
        if stream is not None:
            stream.end(reason)
        return stream

    def streams(self) -> list[Stream]:
        """Snapshot list of live streams."""
        return list(self._streams.values())

    def __contains__(self, stream_id: object) -> bool:
        return stream_id in self._streams

    def __len__(self) -> int:
        return len(self._streams)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._streams))
