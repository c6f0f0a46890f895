"""In-memory RTMP peers for the unit tests: no sockets, deterministic time."""

from __future__ import annotations

from collections.abc import Callable

from server.protocols.rtmp import (
    ConnectRequested,
    Event,
    PublishRequested,
    Role,
    RtmpConnection,
    RtmpLimits,
    amf0,
    commands,
)
from server.protocols.rtmp.chunk import ChunkReader, Message, encode_message
from server.protocols.rtmp.handshake import PACKET_SIZE
from server.protocols.rtmp.messages import MessageType

C0C1 = b"\x03" + bytes(4) + bytes(4) + bytes(range(256)) * 5 + bytes(248)
C2 = bytes(PACKET_SIZE)
assert len(C0C1) == 1 + PACKET_SIZE


def new_reader() -> ChunkReader:
    return ChunkReader(
        max_message_size=16 << 20,
        max_chunk_size=1 << 20,
        max_chunk_streams=64,
        max_partial_bytes=64 << 20,
    )


def parse_output(data: bytes, reader: ChunkReader | None = None) -> list[Message]:
    """Decode what a connection sent (after the handshake) into messages."""
    reader = reader if reader is not None else new_reader()
    out: list[Message] = []
    reader.feed(data, out)
    return out


def command_of(msg: Message) -> commands.Command:
    assert msg.type_id == MessageType.COMMAND_AMF0
    return commands.parse_command(msg.payload)


def status_code(command: commands.Command) -> str:
    """The ``code`` of an onStatus/_result/_error info object."""
    info = command.arg(0)
    assert isinstance(info, dict)
    code = info["code"]
    assert isinstance(code, str)
    return code


def cmd(name: str, tid: float, obj: amf0.AmfValue = None, *args: amf0.AmfValue) -> bytes:
    return commands.encode_command(name, tid, obj, *args)


class FakeClient:
    """A hand-driven publisher that speaks through raw messages (like rtmp2sink with
    chunk size 128), so that tests control every transaction ID and stream ID."""

    def __init__(self, server: RtmpConnection, now: float = 0.0) -> None:
        self.server = server
        self.now = now
        self.reader = new_reader()
        self.chunk_size = 128

    def handshake(self) -> bytes:
        """C0+C1 then C2; returns S0+S1+S2 (consumed)."""
        self.server.receive_data(C0C1, self.now)
        answer = self.server.data_to_send()
        assert len(answer) == 1 + 2 * PACKET_SIZE
        self.server.receive_data(C2, self.now)
        return answer

    def wire(
        self, type_id: int, payload: bytes, *, msid: int = 0, ts: int = 0, csid: int = 3
    ) -> bytes:
        return encode_message(csid, type_id, msid, ts, payload, self.chunk_size)

    def send(
        self, type_id: int, payload: bytes, *, msid: int = 0, ts: int = 0, csid: int = 3
    ) -> None:
        self.server.receive_data(self.wire(type_id, payload, msid=msid, ts=ts, csid=csid), self.now)

    def command(
        self, name: str, tid: float, obj: amf0.AmfValue = None, *args: amf0.AmfValue, msid: int = 0
    ) -> None:
        self.send(MessageType.COMMAND_AMF0, cmd(name, tid, obj, *args), msid=msid)

    def received(self) -> list[Message]:
        return parse_output(self.server.data_to_send(), self.reader)

    def connect(self, app: str = "live", tid: float = 1, **extra: amf0.AmfValue) -> None:
        props: dict[str, amf0.AmfValue] = {
            "app": app,
            "type": "nonprivate",
            "flashVer": "FMLE/3.0 (compatible; FMSc/1.0)",
            "tcUrl": f"rtmp://127.0.0.1/{app}",
        }
        props.update(extra)
        self.command("connect", tid, props)

    def publish_sequence(self, key: str = "key", tid_zero: bool = False) -> None:
        """releaseStream, FCPublish, createStream, publish (tid 0 everywhere like
        rtmp2sink when ``tid_zero``; createStream still needs its own tid)."""
        t = (lambda n: 0) if tid_zero else (lambda n: n)
        self.command("releaseStream", t(2), None, key)
        self.command("FCPublish", t(3), None, key)
        self.command("createStream", 4, None)
        self.command("publish", t(5), None, key, "live", msid=1)


def accept_all(conn: RtmpConnection, events: list[Event]) -> None:
    for ev in events:
        if isinstance(ev, ConnectRequested):
            conn.accept_connect()
        elif isinstance(ev, PublishRequested):
            conn.accept_publish(ev.stream_id)


class Pair:
    """A client and a server connected back to back; ``pump`` moves bytes until quiet."""

    def __init__(
        self,
        decide: Callable[[RtmpConnection, list[Event]], None] = accept_all,
        server_limits: RtmpLimits | None = None,
        client_limits: RtmpLimits | None = None,
        now: float = 0.0,
    ) -> None:
        self.client = RtmpConnection(Role.CLIENT, client_limits, now)
        self.server = RtmpConnection(Role.SERVER, server_limits, now)
        self.decide = decide
        self.now = now
        self.client_events: list[Event] = []
        self.server_events: list[Event] = []
        self.to_server: list[bytes] = []
        self.to_client: list[bytes] = []

    def pump(self, rounds: int = 50, step: int = 0) -> None:
        """Move bytes both ways until quiet; ``step`` > 0 delivers them in pieces that
        small (1 = one byte per receive_data call)."""
        for _ in range(rounds):
            up = self.client.data_to_send()
            down = self.server.data_to_send()
            self.to_server.append(up)
            self.to_client.append(down)
            size = step or max(len(up), len(down), 1)
            for i in range(0, len(up), size):
                self.server.receive_data(up[i : i + size], self.now)
            for i in range(0, len(down), size):
                self.client.receive_data(down[i : i + size], self.now)
            new_server = self.server.events()
            self.server_events.extend(new_server)
            if not self.server.closed:
                self.decide(self.server, new_server)
            self.server_events.extend(self.server.events())
            self.client_events.extend(self.client.events())
            if not up and not down:
                return
        raise AssertionError("pair did not settle")

    def start(self, key: str = "key", step: int = 0, **kwargs: object) -> None:
        self.client.start("live", "rtmp://127.0.0.1/live", key, **kwargs)  # type: ignore[arg-type]
        self.pump(step=step)
