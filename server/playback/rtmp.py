"""One RTMP player: an ingest connection that accepted a ``play``, as a member of its
stream's fanout (``server.playback.fanout``).

The fanout writes the stream's shared pre-chunked bytes straight to the transport
(one ``write`` per wake-up, no per-player task or queue); what only this player
gets (onMetaData, its start at a keyframe, the end of the stream) goes through the
connection's protocol core like every other message it sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from server.protocols import rtmp


class PlayerGone(Exception):
    """The player hung up (or its connection failed) while we were sending."""


class RtmpPlayer:
    """``server.playback.fanout.FanoutPlayer`` over one server-role connection's play.
    ``paused`` follows the transport's pause/resume_writing (its bound is the
    ``playback.write_buffer_bytes`` high-water mark)."""

    __slots__ = ("_finished", "_flush", "conn", "edge_id", "paused", "stream_id", "transport")

    def __init__(
        self,
        conn: rtmp.RtmpConnection,
        stream_id: int,
        transport: asyncio.Transport,
        flush: Callable[[], None],
        finished: Callable[[str], None],
        edge_id: str,
    ) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.transport = transport
        self._flush = flush
        self._finished = finished
        self.edge_id = edge_id
        self.paused = False

    def begin(self, metadata: Mapping[str, float | str | bool], wire: bytes) -> None:
        if self.conn.closed:
            return
        self.conn.send_play_metadata(self.stream_id, dict(metadata))
        self.conn.send_prechunked(wire)
        self._flush()

    def write(self, wire: bytes) -> None:
        transport = self.transport
        if not transport.is_closing():
            transport.write(wire)

    def end(self, reason: str, stream_ended: bool) -> None:
        if stream_ended and not self.conn.closed:
            self.conn.end_play(self.stream_id, f"{self.edge_id} ended")
            self._flush()
        self._finished(reason)
