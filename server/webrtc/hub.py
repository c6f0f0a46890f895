"""Opus packets of WHIP publishers, handed as they are to WHEP viewers of the same stream.

The bus carries one audio track, AAC (what HLS, RTMP and recording need); a WebRTC
viewer wants Opus, which the publisher already sent. This side channel keeps it, so
a WHIP → WHEP stream is never transcoded on the way to a browser.
"""

from __future__ import annotations

from collections.abc import Callable

OpusListener = Callable[[int, bytes], None]
"""Called with (pts in 90 kHz ticks on the bus's timeline, one Opus packet)."""


class OpusHub:
    def __init__(self) -> None:
        self._listeners: dict[str, set[OpusListener]] = {}

    def publish(self, stream_id: str, pts: int, packet: bytes) -> None:
        for listener in self._listeners.get(stream_id, ()):
            listener(pts, packet)

    def subscribe(self, stream_id: str, listener: OpusListener) -> None:
        self._listeners.setdefault(stream_id, set()).add(listener)

    def unsubscribe(self, stream_id: str, listener: OpusListener) -> None:
        listeners = self._listeners.get(stream_id)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._listeners[stream_id]
