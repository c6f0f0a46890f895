"""What the transcoder tells the outputs that serve renditions (HLS)."""

from __future__ import annotations

from typing import Protocol

from server.bus import Stream


class RenditionObserver(Protocol):
    def renditions_planned(self, stream_id: str, names: tuple[str, ...]) -> None:
        """The stream will have these renditions (before any is encoded)."""

    def rendition_opened(self, stream_id: str, name: str, stream: Stream) -> None:
        """A rendition's bus stream exists (anew after a worker restart)."""

    def rendition_dropped(self, stream_id: str, name: str) -> None:
        """The stream fell back to passthrough: this rendition is gone for the session."""
