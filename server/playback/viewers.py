"""Who watches a stream right now, and how much it has been watched this session.

RTMP and SRT players are connections, so they are counted exactly from open to
close; HLS viewers are counted by the packager over its sliding window and only
read here. Viewer-seconds of connections accrue when they close (and, for those
still open, up to the moment of the snapshot).
"""

from __future__ import annotations

from dataclasses import dataclass

PROTOCOLS = ("hls", "rtmp", "srt", "webrtc")


@dataclass(frozen=True, slots=True)
class ViewershipStats:
    """A snapshot for the API and metrics (the API names the fields in camelCase)."""

    hls: int
    rtmp: int
    srt: int
    peak_viewers: int
    total_views: int
    viewer_seconds: float
    webrtc: int = 0  # WHEP viewers

    @property
    def total(self) -> int:
        return self.hls + self.rtmp + self.srt + self.webrtc


@dataclass(frozen=True, slots=True)
class HlsAudience:
    """What the HLS packager knows of its viewers (see ``server.hls.packager.Viewers``)."""

    current: int = 0
    views: int = 0
    seconds: float = 0.0


class Viewership:
    """Per-session counts of one stream; ``now`` is any monotonic clock, passed in."""

    __slots__ = ("_closed_seconds", "_open", "_started", "peak", "views")

    def __init__(self) -> None:
        self._open: dict[int, tuple[str, float]] = {}
        self._started = 0
        self._closed_seconds = 0.0
        self.peak = 0
        self.views = 0

    def players(self, protocol: str | None = None) -> int:
        """Open RTMP/SRT players (of one protocol, or all)."""
        if protocol is None:
            return len(self._open)
        return sum(1 for p, _ in self._open.values() if p == protocol)

    def opened(self, protocol: str, now: float, hls_current: int) -> int:
        """A player started; returns its handle for :meth:`closed`."""
        self._started += 1
        self._open[self._started] = (protocol, now)
        self.views += 1
        self.peak = max(self.peak, hls_current + len(self._open))
        return self._started

    def withdrawn(self, handle: int) -> None:
        """A player admitted and then refused before it saw anything (SRT passphrase)."""
        if self._open.pop(handle, None) is not None:
            self.views -= 1

    def closed(self, handle: int, now: float) -> None:
        entry = self._open.pop(handle, None)
        if entry is not None:
            self._closed_seconds += max(0.0, now - entry[1])

    def snapshot(self, now: float, hls: HlsAudience) -> ViewershipStats:
        self.peak = max(self.peak, hls.current + len(self._open))
        running = sum(max(0.0, now - t) for _, t in self._open.values())
        return ViewershipStats(
            hls=hls.current,
            rtmp=self.players("rtmp"),
            srt=self.players("srt"),
            webrtc=self.players("webrtc"),
            peak_viewers=self.peak,
            total_views=self.views + hls.views,
            viewer_seconds=round(self._closed_seconds + running + hls.seconds, 1),
        )
