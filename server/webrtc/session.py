"""What a WHIP publisher and a WHEP viewer share: one peer connection whose end, from
whichever side (the peer leaves, a deadline passes, the server stops, a takeover), runs
one teardown exactly once, in its own task so that callers inside aiortc's callbacks
never await it."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aiortc import RTCPeerConnection

from server.logfields import MediaLog, new_connection_id
from server.webrtc.peer import close_quietly, new_peer

if TYPE_CHECKING:
    from server.webrtc.service import WebRtcService

log = logging.getLogger("relaycast.webrtc")


class PeerSession:
    kind = "webrtc"
    """``whip`` or ``whep``: names the connection id and the log lines."""

    def __init__(self, service: WebRtcService, session_id: str, remote: str) -> None:
        self.service = service
        self.session_id = session_id
        self.remote = remote
        self.connection_id = new_connection_id(self.kind)
        self.log = MediaLog(log, self.connection_id)
        self.loop = asyncio.get_running_loop()
        self.pc: RTCPeerConnection = new_peer()
        self.started = self.loop.time()
        self.connected = False
        self._closing: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None

    def _state_changed(self) -> None:
        state = self.pc.connectionState
        if state == "connected":
            self.connected = True
            self._connected()
        elif state in ("failed", "closed"):
            self.close(f"WebRTC connection {state}")

    def _connected(self) -> None:
        """The peer connection is up (ICE and DTLS done)."""

    def close(self, reason: str) -> None:
        """Every way a session ends; idempotent."""
        if self._closing is None:
            self.log.info("%s %s: closing: %s", self.kind, self.remote, reason)
            self._closing = self.loop.create_task(self._teardown(reason))

    async def wait_closed(self) -> None:
        if self._closing is not None:
            await asyncio.shield(self._closing)

    async def _teardown(self, reason: str) -> None:
        if self._supervisor is not None and self._supervisor is not asyncio.current_task():
            self._supervisor.cancel()
        await self._release(reason)
        self.service.forget(self.session_id)
        await close_quietly(self.pc)

    async def _release(self, reason: str) -> None:
        """What the session holds beyond the peer connection (a claim, a ticket)."""
