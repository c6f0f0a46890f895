"""One SRT player: its bus reader muxed to MPEG-TS and sent on the sender half of a
listener-side connection (``m=request``).

The feed is the pushers' own, as for RTMP players. SRT live has no send window to
wait on (the core paces and drops what is too late to matter, counted in its
stats), so this output is always writable; a player that stops answering ends by
the core's peer idle timeout.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from server.bus import Reader
from server.media.frame import CodecConfig, Frame, TrackKind
from server.media.mpegts import TsMuxer
from server.protocols import srt
from server.push.ports import BatchWriter, FrameByFrame, PushStalled
from server.push.pusher import _Feed
from server.push.srt_client import PAYLOAD, TIMELINE_START
from server.settings import PlaybackSettings

from .rtmp import PlayerGone


class SrtPlayerOutput:
    """``server.push.ports.MediaPublisher`` over a listener-side SRT connection."""

    def __init__(
        self, conn: srt.SrtConnection, now: Callable[[], float], flush: Callable[[], None]
    ) -> None:
        self.conn = conn
        self._now = now
        self._flush = flush
        self._configs: dict[TrackKind, CodecConfig] = {}
        self._muxer: TsMuxer | None = None
        self._offset: int | None = None
        self._pending = b""

    @property
    def bytes_sent(self) -> int:
        return self.conn.stats().bytes_sent

    @property
    def writable(self) -> bool:
        return not self.conn.closed

    @property
    def error(self) -> Exception | None:
        return PlayerGone("player disconnected") if self.conn.closed else None

    def send_metadata(self, metadata: Mapping[str, float | str | bool]) -> None:
        """MPEG-TS carries no onMetaData: the PMT and the streams describe themselves."""

    def send_config(self, config: CodecConfig, timestamp_ms: int = 0) -> None:
        """A changed configuration starts a fresh muxer (new PAT/PMT at the next frame)."""
        configs = {**self._configs, config.track: config}
        if configs != self._configs:
            self._configs = configs
            self._muxer = None

    def send_frame(self, frame: Frame) -> None:
        if self.conn.closed:
            raise PlayerGone("player disconnected")
        muxer = self._muxer
        fresh = muxer is None
        if muxer is None:
            muxer = self._muxer = TsMuxer(list(self._configs.values()))
        if self._offset is None:
            self._offset = TIMELINE_START - frame.dts
        if frame.dts + self._offset < 0:
            return
        data = self._pending + muxer.mux(frame, self._offset, with_tables=fresh)
        full = len(data) - len(data) % PAYLOAD
        self._pending = data[full:]
        if full:
            now = self._now()
            for pos in range(0, full, PAYLOAD):
                self.conn.send(data[pos : pos + PAYLOAD], now)
            self._flush()

    def batch_writer(self) -> BatchWriter:
        return FrameByFrame(self)

    async def drain(self) -> None:
        if self.conn.closed:
            raise PlayerGone("player disconnected")

    async def close(self, grace: float = 5.0) -> None:
        """The listener owns the connection and closes it."""


async def feed_srt_player(
    reader: Reader, output: SrtPlayerOutput, settings: PlaybackSettings
) -> str:
    """Send the stream until it ends or the player goes; returns why it finished."""
    feed = _Feed(output, reader, settings.stall_timeout, settings.batch_interval)
    try:
        await feed.run()
    except (PushStalled, PlayerGone):
        return "player disconnected"
    except ValueError as exc:  # a codec MPEG-TS output does not carry
        return f"cannot send this stream over MPEG-TS: {exc}"
    return "stream ended"
