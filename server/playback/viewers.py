"""Who watches a stream right now, and how much it has been watched this session.

RTMP and SRT players are connections, so they are counted exactly from open to
close; HLS viewers are counted by the packager over its sliding window and only
read here. Viewer-seconds of connections accrue when they close (and, for those
still open, up to the moment of the snapshot).

On the node carrying a stream, the players other nodes relay it to (RTMP, SRT, WHEP
there) are counted too: each relaying node reports its players by protocol and its
views every second they change (``server.playback.relay``), and their viewer-seconds
accrue between reports, so the session's figures cover every node.
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


@dataclass(frozen=True, slots=True)
class RelayedAudience:
    """One relaying node's players of a stream, by protocol, and its views so far."""

    rtmp: int = 0
    srt: int = 0
    webrtc: int = 0
    views: int = 0

    @property
    def players(self) -> int:
        return self.rtmp + self.srt + self.webrtc


class Viewership:
    """Per-session counts of one stream; ``now`` is any monotonic clock, passed in."""

    __slots__ = (
        "_closed_seconds",
        "_open",
        "_relayed",
        "_relayed_views",
        "_started",
        "peak",
        "views",
    )

    def __init__(self) -> None:
        self._open: dict[int, tuple[str, float]] = {}
        self._started = 0
        self._closed_seconds = 0.0
        self._relayed: dict[str, tuple[RelayedAudience, float]] = {}
        self._relayed_views: dict[str, int] = {}
        self.peak = 0
        self.views = 0

    def relayed(self, relay: str, audience: RelayedAudience | None, now: float, hls: int) -> None:
        """A relaying node's latest report (None: its relay ended); ``hls``: the HLS
        viewers now, for the peak."""
        self._accrue(relay, now)
        if audience is None:
            self._relayed.pop(relay, None)
            return
        self._relayed[relay] = (audience, now)
        self._relayed_views[relay] = max(audience.views, self._relayed_views.get(relay, 0))
        self.peak = max(self.peak, hls + len(self._open) + self._relayed_players())

    def _accrue(self, relay: str, now: float) -> None:
        held = self._relayed.get(relay)
        if held is not None:
            self._closed_seconds += held[0].players * max(0.0, now - held[1])

    def _relayed_players(self, protocol: str | None = None) -> int:
        return sum(
            a.players if protocol is None else getattr(a, protocol)
            for a, _ in self._relayed.values()
        )

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
        self.peak = max(self.peak, hls_current + len(self._open) + self._relayed_players())
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
        """Every node's viewers (this node's and those relayed elsewhere)."""
        self.peak = max(self.peak, hls.current + len(self._open) + self._relayed_players())
        running = sum(max(0.0, now - t) for _, t in self._open.values())
        running += sum(a.players * max(0.0, now - t) for a, t in self._relayed.values())
        return ViewershipStats(
            hls=hls.current,
            rtmp=self.players("rtmp") + self._relayed_players("rtmp"),
            srt=self.players("srt") + self._relayed_players("srt"),
            webrtc=self.players("webrtc") + self._relayed_players("webrtc"),
            peak_viewers=self.peak,
            total_views=self.views + hls.views + sum(self._relayed_views.values()),
            viewer_seconds=round(self._closed_seconds + running + hls.seconds, 1),
        )
