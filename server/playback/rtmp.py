"""One RTMP player: its bus reader fed into an accepted ``play`` on an ingest connection.

The feed is the pushers' own (``server.push.pusher``): the same batching, timeline
and flow control, so a player is a destination that happens to have dialled us. The
output below is what the feed drives; a player that stops reading fills its socket,
the feed waits (up to the stall timeout) and meanwhile its reader drops to the next
keyframe, counted, while the publisher and the other players go on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from server.media.frame import CodecConfig, Frame
from server.protocols import rtmp
from server.push.ports import BatchWriter
from server.push.pusher import PushStalled, _Feed
from server.push.rtmp_client import Prechunked
from server.settings import PlaybackSettings

from .service import PlayTicket


class PlayerGone(Exception):
    """The player hung up (or its connection failed) while we were sending."""


class WriteGate:
    """The transport's pause/resume as something to await; set ``error`` when lost."""

    __slots__ = ("_waiter", "error", "paused")

    def __init__(self) -> None:
        self.paused = False
        self.error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        self._wake()

    def lost(self) -> None:
        if self.error is None:
            self.error = PlayerGone("player disconnected")
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        while self.paused and self.error is None:
            if self._waiter is None:
                self._waiter = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._waiter)
        if self.error is not None:
            raise self.error


class RtmpPlayerOutput:
    """``server.push.ports.MediaPublisher`` over one server-role connection's play."""

    def __init__(
        self,
        conn: rtmp.RtmpConnection,
        stream_id: int,
        gate: WriteGate,
        flush: Callable[[], None],
    ) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.gate = gate
        self._flush = flush

    @property
    def chunk_size(self) -> int:
        return self.conn.out_chunk_size

    @property
    def bytes_sent(self) -> int:
        return self.conn.bytes_sent

    @property
    def writable(self) -> bool:
        return not self.gate.paused and self.gate.error is None

    @property
    def error(self) -> Exception | None:
        if self.gate.error is None and self.conn.closed:
            self.gate.lost()
        return self.gate.error

    def _check(self) -> None:
        if self.error is not None:
            raise self.error

    def send_metadata(self, metadata: Mapping[str, float | str | bool]) -> None:
        self._check()
        self.conn.send_play_metadata(self.stream_id, dict(metadata))
        self._flush()

    def send_prechunked(self, wire: bytes) -> None:
        self._check()
        self.conn.send_prechunked(wire)
        self._flush()

    def batch_writer(self) -> BatchWriter:
        return Prechunked(self)

    def send_config(self, config: CodecConfig, timestamp_ms: int = 0) -> None:
        writer = Prechunked(self)
        writer.config(config, timestamp_ms)
        writer.flush()

    def send_frame(self, frame: Frame) -> None:
        writer = Prechunked(self)
        writer.frame(frame)
        writer.flush()

    async def drain(self) -> None:
        await self.gate.wait()

    async def close(self, grace: float = 5.0) -> None:
        """The connection belongs to the ingest listener, which closes it."""


async def feed_player(
    ticket: PlayTicket, output: RtmpPlayerOutput, settings: PlaybackSettings
) -> str:
    """Send the stream until it ends or the player goes; returns why it finished."""
    feed = _Feed(output, ticket.reader, settings.stall_timeout, settings.batch_interval)
    try:
        await feed.run()
    except PushStalled:
        return f"player stopped reading for {settings.stall_timeout:g} s"
    except PlayerGone:
        return "player disconnected"
    if not output.conn.closed:
        output.conn.end_play(output.stream_id, f"{ticket.grant.edge_id} ended")
        output._flush()
    return "stream ended"
