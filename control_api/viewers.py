"""The store side of the media plane's ``ViewershipSink``: a session row keeps its
audience (peak concurrent viewers, viewer-seconds) once the session has ended."""

from __future__ import annotations

from control_api.store import Store
from server.playback import ViewershipStats


class SessionViewers:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def session_viewers(self, session_id: str, stats: ViewershipStats) -> None:
        await self.store.stream_sessions.set_viewers(
            session_id, stats.peak_viewers, stats.viewer_seconds
        )
