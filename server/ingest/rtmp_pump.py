"""The per-message work of an RTMP ingest connection, out of its asyncio protocol.

A publisher's read carries a few to a few hundred RTMP messages. For each media
message the ingest turns the FLV tag body into a frame or a codec configuration and
hands it to its claim; everything else (connect, publish, metadata, unpublish,
failures) is a decision for the application. ``server.ingest.rtmp`` used to loop over
every event itself, in interpreted Python, per message (about a third of the ingest
plane's CPU at 50 publishers, issue 20). :class:`RtmpIngestPump` does that loop here,
compiled with mypyc (``server/accel_modules.txt``) between the compiled connection,
FLV parser and claim, so the protocol calls it once per read and once per event that
needs a decision, not once per message. This source stays the pure-Python reference.

No sockets, no event loop, no clock: ``now`` comes from the caller, as everywhere in
the sans-IO cores.
"""

from __future__ import annotations

from server.ingest.claim import Claim
from server.media.errors import MediaFormatError
from server.media.flv import FlvTagParser
from server.media.frame import CodecConfig, Frame
from server.protocols.rtmp.connection import RtmpConnection
from server.protocols.rtmp.events import Event, MediaReceived


class MalformedMedia:
    """An audio or video tag the FLV parser refused; given to the application in the
    event's place (it counts it, logs it and closes the connection)."""

    __slots__ = ("error", "kind")

    def __init__(self, kind: str, error: MediaFormatError) -> None:
        self.kind = kind
        self.error = error

    def __repr__(self) -> str:
        return f"MalformedMedia({self.kind!r}, {str(self.error)!r})"


class RtmpIngestPump:
    """One publisher connection's read path: feed the core, meter the read, and turn
    its media events into frames for the claim, in order, stopping at the first
    event the application has to decide on.

    The position in the current batch of events lives on the object, not in locals:
    handing a frame to the claim may close this connection (a plan limit broken, a
    takeover), and the application's close pumps again, re-entering
    :meth:`next_event`, which then goes on from the same place without handing any
    event out twice.
    """

    __slots__ = ("_events", "_next", "claim", "conn", "flv")

    def __init__(self, conn: RtmpConnection) -> None:
        self.conn = conn
        self.flv = FlvTagParser()
        self.claim: Claim | None = None
        """Set by the application once its publish is accepted (None again when it ends):
        media before that, or after, is dropped."""
        self._events: list[Event] = []
        self._next = 0

    def receive(self, data: bytes, now: float) -> Event | MalformedMedia | None:
        """One read from the peer (``b""`` at end of stream), metered on the claim;
        then as :meth:`next_event` (one call per read for the application)."""
        self.conn.receive_data(data, now)
        claim = self.claim
        if claim is not None and data:
            claim.received(len(data), now)
        return self.next_event()

    def next_event(self) -> Event | MalformedMedia | None:
        """The next event the application must handle (never a ``MediaReceived``: those
        are handled here), a :class:`MalformedMedia`, or None once the core has no more
        events. Call it until it returns None: an event handled in between (accepting a
        connect replays what the peer pipelined) may have produced more."""
        # One pass per media message, the event dispatch written out here (no call per
        # message between taking the event and handing its tag to the FLV parser).
        while True:
            events = self._events
            index = self._next
            if index >= len(events):
                events = self.conn.events()
                if not events:
                    if index:
                        self._events = events
                        self._next = 0
                    return None
                self._events = events
                index = 0
            event = events[index]
            self._next = index + 1
            if not isinstance(event, MediaReceived):
                return event
            claim = self.claim
            if claim is None:  # not published (yet, or any more): dropped
                continue
            kind = event.kind
            try:
                if kind == "video":
                    result = self.flv.video(event.payload, event.timestamp)
                elif kind == "audio":
                    result = self.flv.audio(event.payload, event.timestamp)
                else:  # data messages other than onMetaData: nothing the ingest keeps
                    continue
            except MediaFormatError as exc:
                return MalformedMedia(kind, exc)
            if isinstance(result, Frame):
                claim.frame(result)
            elif isinstance(result, CodecConfig):
                claim.config(result)
