"""WHIP and WHEP sessions of this process: creation under a bound, lookup, teardown.

HTTP-agnostic: ``server.webrtc.http`` maps requests and outcomes to status codes.
A session id is 128 random bits and the session URL (``Location``) is its only
handle, so only the client that created a session can trickle to it or end it.
"""

from __future__ import annotations

import asyncio
import secrets

from aiortc.sdp import candidate_from_sdp

from server.ingest.manager import IngestManager
from server.playback import PlaybackService
from server.settings import WebRtcSettings
from server.webrtc.hub import OpusHub
from server.webrtc.peer import BadOffer
from server.webrtc.whep import WhepSession
from server.webrtc.whip import WhipSession

Session = WhipSession | WhepSession


class TooManySessions(Exception):
    """``webrtc.max_sessions`` are open."""


class UnknownSession(Exception):
    pass


class IceRestartUnsupported(Exception):
    """A PATCH asked for an ICE restart (new ufrag/pwd); only trickle is supported."""


class WebRtcService:
    def __init__(
        self, manager: IngestManager, playback: PlaybackService, settings: WebRtcSettings
    ) -> None:
        self.manager = manager
        self.playback = playback
        self.settings = settings
        self.opus = OpusHub()
        self.sessions: dict[str, Session] = {}
        self.refused_full = 0

    def _reserve(self) -> str:
        if len(self.sessions) >= self.settings.max_sessions:
            self.refused_full += 1
            raise TooManySessions(f"{self.settings.max_sessions} WebRTC sessions are open")
        return secrets.token_urlsafe(16)

    async def publish(self, offer: str, stream_key: str, remote: str) -> tuple[str, str]:
        """A WHIP publisher: (session id, SDP answer); raises BadOffer, Refused,
        TooManySessions."""
        session_id = self._reserve()
        session = WhipSession(self, session_id, remote)
        self.sessions[session_id] = session
        answer = await session.negotiate(offer, stream_key)
        return session_id, answer

    async def play(self, offer: str, edge_id: str, token: str, remote: str) -> tuple[str, str]:
        """A WHEP viewer: (session id, SDP answer); raises BadOffer, PlayRefused,
        TooManySessions. A stream another node carries is relayed here first (like an
        RTMP player's, ``server.playback.relay``): media must come from this node, the
        one the viewer's ICE candidates name."""
        playback = self.playback
        if playback.needs_relay(edge_id) and playback.relays is not None:
            await playback.relays.attach(edge_id)  # refused as not live if it failed
        session_id = self._reserve()
        session = WhepSession(self, session_id, remote)
        self.sessions[session_id] = session
        answer = await session.negotiate(offer, edge_id, token)
        return session_id, answer

    def sends_opus(self, stream_id: str) -> bool:
        """True while the stream's publisher is a WHIP session with audio."""
        return any(
            isinstance(s, WhipSession)
            and s.claim is not None
            and s.claim.current
            and s.claim.live.grant.stream_id == stream_id
            and s.transcoder.started
            for s in self.sessions.values()
        )

    def get(self, session_id: str, kind: type[Session]) -> Session:
        session = self.sessions.get(session_id)
        if not isinstance(session, kind):
            raise UnknownSession(session_id)
        return session

    async def trickle(self, session_id: str, kind: type[Session], fragment: str) -> None:
        """Remote candidates from an ``application/trickle-ice-sdpfrag`` body (RFC 8840)."""
        session = self.get(session_id, kind)
        remote = session.pc.remoteDescription
        mid = None
        for line in fragment.splitlines():
            line = line.strip()
            if line.startswith(("a=ice-ufrag:", "a=ice-pwd:")) and remote is not None:
                if line not in remote.sdp:
                    raise IceRestartUnsupported("ICE restarts are not supported")
            elif line.startswith("a=mid:"):
                mid = line[len("a=mid:") :]
            elif line.startswith("a=candidate:"):
                try:
                    candidate = candidate_from_sdp(line[len("a=") :])
                except (ValueError, IndexError):
                    raise BadOffer("malformed candidate line") from None
                candidate.sdpMid = mid
                await session.pc.addIceCandidate(candidate)

    async def end(self, session_id: str, kind: type[Session]) -> None:
        session = self.get(session_id, kind)
        session.close("ended by the client (DELETE)")
        await session.wait_closed()

    def forget(self, session_id: str) -> None:
        self.sessions.pop(session_id, None)

    def counts(self) -> dict[str, int]:
        whip = sum(isinstance(s, WhipSession) for s in self.sessions.values())
        return {"whip": whip, "whep": len(self.sessions) - whip}

    async def close(self) -> None:
        sessions = list(self.sessions.values())
        for session in sessions:
            session.close("server shutting down")
        await asyncio.gather(*(s.wait_closed() for s in sessions), return_exceptions=True)
