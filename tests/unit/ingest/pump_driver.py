"""An RTMP ingest connection's read path without asyncio: a server ``RtmpConnection``,
its ``RtmpIngestPump`` and a real ``Claim`` on a bus stream, decided on as
``server.ingest.rtmp.RtmpIngestConnection`` decides (accept connect and publish, drop
the claim on unpublish, hang up on a malformed tag). Built from one twin of each
accelerated module (:class:`Twins`), so the same driver runs the compiled path and the
pure one."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType
from typing import Any

from server.bus import StreamGrant
from server.ingest.sessions import Live
from server.protocols.rtmp.chunk import encode_message
from server.protocols.rtmp.messages import MessageType
from tests.unit.media.vectors import encode_flv, iter_flv_tags
from tests.unit.rtmp.helpers import C0C1, C2, cmd

PUBLISH = b"".join(
    encode_message(3, MessageType.COMMAND_AMF0, msid, 0, cmd(*command), 128)
    for msid, command in (
        (0, ("connect", 1, {"app": "live", "tcUrl": "rtmp://127.0.0.1/live"})),
        (0, ("createStream", 2, None)),
        (1, ("publish", 3, None, "key", "live")),
    )
)
"""connect, createStream and publish on message stream 1 (128-byte chunks)."""


@cache
def real_tags() -> tuple[tuple[int, int, bytes], ...]:
    """(RTMP type, timestamp ms, body) of FFmpeg's FLV of H.264 + AAC: the sequence
    headers first, then keyframe, inter frames and audio frames."""
    data = encode_flv("libx264", 160, 96, 4, "aac", (("preset", "ultrafast"), ("bf", "0")))
    return tuple((kind, ts, body) for kind, ts, body in iter_flv_tags(data) if kind in (8, 9))


def media(type_id: int, timestamp: int, body: bytes, csid: int = 6) -> bytes:
    """One message on the published stream (128-byte chunks, the default)."""
    return encode_message(csid, type_id, 1, timestamp, body, 128)


@dataclass
class Twins:
    """One implementation of each module the read path goes through."""

    connection: ModuleType
    pump: ModuleType
    claim: ModuleType
    meter: ModuleType
    registry: ModuleType
    events: ModuleType

    @classmethod
    def of(cls, modules: dict[str, ModuleType]) -> Twins:
        return cls(
            modules["server.protocols.rtmp.connection"],
            modules["server.ingest.rtmp_pump"],
            modules["server.ingest.claim"],
            modules["server.ingest.meter"],
            modules["server.bus.registry"],
            modules["server.protocols.rtmp.events"],
        )


@dataclass(eq=False)
class Owner:
    """The manager's side of a claim; ``on_live`` runs when the first frame arrives."""

    asked: list[tuple[str, str]] = field(default_factory=list)
    on_live: Any = None

    def clock(self) -> float:
        return 0.0

    def fail(self, live: Live, reason: str) -> None:
        self.asked.append(("fail", reason))
        live.publisher = None

    def went_live(self, live: Live) -> None:
        self.asked.append(("live", ""))
        live.live = True
        if self.on_live is not None:
            self.on_live()


@dataclass(eq=False)
class Publisher:
    remote: str = "127.0.0.1:1"
    protocol: str = "rtmp"

    def close(self, reason: str) -> None:
        pass


class Ingest:
    """The read path of one publisher connection, fed read by read."""

    def __init__(self, twins: Twins, limits: Any = None) -> None:
        self.twins = twins
        connection = twins.connection
        self.conn = connection.RtmpConnection(connection.Role.SERVER, handshake_random=bytes(1528))
        self.pump = twins.pump.RtmpIngestPump(self.conn)
        self.stream = twins.registry.Registry().create("s1")
        self.reader = self.stream.reader("test", max_frames=100_000, max_bytes=1 << 30)
        self.owner = Owner()
        publisher = Publisher()
        grant = StreamGrant("s1", "env", True, 5, limits=limits)
        meter = twins.meter.IngestMeter()
        self.live = Live(grant, self.stream, publisher=publisher, meter=meter)
        self.claim = twins.claim.Claim(self.owner, self.live, publisher)
        self.now = 0.0

    def feed(self, data: bytes) -> list[Any]:
        """One read; the events the pump handed out for it, each decided on."""
        self.now += 0.25
        handed: list[Any] = []
        event = self.pump.receive(data, self.now)
        while event is not None:
            handed.append(event)
            self.decide(event)
            event = self.pump.next_event()
        return handed

    def decide(self, event: Any) -> None:
        events, conn = self.twins.events, self.conn
        if isinstance(event, self.twins.pump.MalformedMedia):
            conn.close("malformed media")
        elif conn.closed:
            return
        elif isinstance(event, events.ConnectRequested):
            conn.accept_connect()
        elif isinstance(event, events.PublishRequested):
            self.pump.claim = self.claim
            conn.accept_publish(event.stream_id)
        elif isinstance(event, events.Unpublished):
            self.pump.claim = None

    def publish(self) -> list[Any]:
        """Handshake, connect, createStream and an accepted publish."""
        handed = self.feed(C0C1) + self.feed(C2) + self.feed(PUBLISH)
        self.conn.data_to_send()
        return handed

    def items(self) -> list[Any]:
        """What the stream's reader got since the last call, comparable across twins."""
        out = []
        while (item := self.reader.next_nowait()) is not None:
            out.append(comparable(item))
        return out


def comparable(value: Any) -> Any:
    """Twin classes never compare equal: dataclasses as class name and fields, an
    error as its class name and message."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return type(value).__name__, dataclasses.astuple(value)
    if type(value).__name__ == "MalformedMedia":
        return "MalformedMedia", value.kind, str(value.error)
    return value
