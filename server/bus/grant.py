"""What a stream is, as every consumer of its bus needs to know it.

Ingest resolves a stream key to a ``StreamGrant``; outputs (HLS, push, and later
recording, renditions and channels) start from the same grant. It lives next to
the bus, not in ingest, so that outputs depend on the bus and media alone and a
stream fed by something other than an encoder (a channel) can hand them one too.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PlanLimits:
    """The stream plan's ceilings; ingest above them ends the session in ``error``."""

    max_width: int
    max_height: int
    max_frame_rate: float
    max_bitrate: int


@dataclass(frozen=True, slots=True)
class StreamGrant:
    """A stream key resolved to the stream it opens, with what ingest must enforce."""

    stream_id: str
    environment_id: str
    enabled: bool
    reconnect_window_seconds: int
    srt_passphrase: str | None = None
    limits: PlanLimits | None = None
    edge_id: str = ""
    low_latency: bool = True
    private: bool = False
    max_clients: int | None = None
    recording: bool = False
    quality: str = "passthrough"  # the renditions it gets (transcode.ladders)
