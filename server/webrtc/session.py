"""What a WHIP publisher and a WHEP viewer share: one peer connection whose end, from
whichever side (the peer leaves, a deadline passes, the server stops, a takeover), runs
one teardown exactly once, in its own task so that callers inside aiortc's callbacks
never await it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiortc import RTCPeerConnection

from server.logfields import MediaLog, new_connection_id
from server.webrtc.peer import (
    bind_in_range,
    check_candidates,
    close_quietly,
    new_peer,
    with_public_ips,
)

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

    async def _negotiate(self, prepare: Callable[[], Awaitable[None]]) -> str:
        """``prepare`` (tracks, the claim or ticket, the remote offer), then our answer on
        the allowed ports; the answer's SDP. On any failure nothing is left open."""
        settings = self.service.settings
        try:
            await prepare()
            bind_in_range(self.pc, settings.udp_ports)
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            check_candidates(self.pc.localDescription.sdp, settings.udp_ports)
        except BaseException:
            await self._teardown("negotiation failed")
            raise
        self.pc.on("connectionstatechange", self._state_changed)
        self._supervisor = self.loop.create_task(self._supervise())
        answer = self.pc.localDescription.sdp
        return with_public_ips(answer, (str(ip) for ip in settings.public_ips))

    async def _supervise(self) -> None:
        """Deadlines no peer event reports (ICE that never completes, a peer gone)."""

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
