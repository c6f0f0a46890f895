"""The SRT ingest adapter without sockets: our sans-IO caller talks to
``SrtIngestServer`` through an in-memory transport; the manager is real, the store fake."""

from __future__ import annotations

import asyncio
import gc
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from bench.hostile_attacks import conclusion_flood
from server.bus import Registry, StreamGrant
from server.ingest.manager import IngestManager
from server.ingest.ports import IngestRefusal
from server.ingest.srt import (
    BATCH_PAYLOADS,
    MEDIA_DELAY,
    SrtIngestConnection,
    SrtIngestServer,
    masked_streamid,
)
from server.media.frame import Frame, TrackKind
from server.media.mpegts import TsMuxer
from server.protocols import srt
from server.protocols.srt.packet import ControlPacket, ControlType
from server.settings import IngestSettings, SrtSettings
from tests.unit.media.avsource import media

CALLER = ("127.0.0.1", 40000)
PASS = "correct-horse-battery"
KEY = "sk_goodkey123"
SECRET_KEY = "sk_secretkey99"


@dataclass
class Directory:
    grants: dict[str, StreamGrant]
    log: list[tuple[str, ...]] = field(default_factory=list)

    async def authorize(self, stream_key: str) -> StreamGrant | None:
        return self.grants.get(stream_key)

    async def session_opened(self, stream_id: str, protocol: str, remote: str, at: datetime) -> str:
        self.log.append(("opened", stream_id, protocol))
        return f"ses_{len(self.log)}"

    async def stream_live(self, stream_id: str, at: datetime) -> None:
        self.log.append(("live", stream_id))

    async def session_closed(
        self, stream_id: str, session_id: str, at: datetime, bytes_in: int, error: str | None
    ) -> None:
        self.log.append(("closed", stream_id))


@dataclass
class Refusals:
    seen: list[IngestRefusal] = field(default_factory=list)

    def refused(self, refusal: IngestRefusal) -> None:
        self.seen.append(refusal)


class Transport:
    """Collects what the server sends, as (datagram, address)."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any]] = []

    def sendto(self, data: bytes, addr: Any) -> None:
        self.sent.append((data, addr))

    def close(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class Rig:
    def __init__(self, **settings: Any) -> None:
        self.directory = Directory(
            {
                KEY: StreamGrant("ls_plain", "env_1", True, 0),
                SECRET_KEY: StreamGrant("ls_secret", "env_1", True, 0, srt_passphrase=PASS),
            }
        )
        self.manager = IngestManager(self.directory, Registry(), IngestSettings())
        self.refusals = Refusals()
        self.manager.refusals.sinks.append(self.refusals)
        self.server = SrtIngestServer(self.manager, SrtSettings(port=0, **settings))
        self.transport = Transport()
        self.loop = asyncio.get_running_loop()
        self.server.prepare(self.loop)
        self.server.connection_made(self.transport)  # type: ignore[arg-type]

    async def exchange(self, caller: srt.SrtConnection, addr: Any = CALLER) -> list[srt.Event]:
        """Move datagrams both ways until quiet; returns the caller's events."""
        events: list[srt.Event] = []
        for _ in range(50):
            moved = False
            for datagram in caller.datagrams_to_send():
                self.server.datagram_received(datagram, addr)
                moved = True
            for _ in range(5):
                await asyncio.sleep(0)
            sent, self.transport.sent = self.transport.sent, []
            for datagram, to in sent:
                if to == addr:
                    caller.receive(datagram, self.loop.time())
                    moved = True
            events += caller.events()
            if not moved:
                break
        return events

    async def connect(
        self, streamid: str, passphrase: str | None = None, addr: Any = CALLER, pbkeylen: int = 16
    ) -> tuple[srt.SrtConnection, list[srt.Event]]:
        caller = srt.SrtConnection.caller(
            self.loop.time(), streamid=streamid, passphrase=passphrase, pbkeylen=pbkeylen
        )
        return caller, await self.exchange(caller, addr)


def kinds(events: list[srt.Event]) -> list[type]:
    return [type(e) for e in events]


def rejection(events: list[srt.Event]) -> int | None:
    found = [e for e in events if isinstance(e, srt.Rejected)]
    return found[0].code if found else None


def ts_payloads(seconds: float = 1.0) -> list[bytes]:
    m = media(seconds=seconds)
    muxer = TsMuxer(m.configs)
    offset = -min(f.dts for f in m.frames)
    data = b"".join(muxer.mux(f, offset, with_tables=i == 0) for i, f in enumerate(m.frames))
    return [data[i : i + 1316] for i in range(0, len(data), 1316)]


async def test_publish_goes_live_with_frames_and_srt_health() -> None:
    rig = Rig()
    caller, events = await rig.connect(f"#!::r=live/{KEY},m=publish")
    assert srt.ConnectionEstablished in kinds(events)
    assert rig.server.counters.accepted == 1 and len(rig.server.connections) == 1
    stream = rig.manager.registry.get("ls_plain")
    assert stream is not None
    reader = stream.reader("test", max_frames=10_000, max_bytes=1 << 26)
    for payload in ts_payloads():
        caller.send(payload, rig.loop.time())
        await rig.exchange(caller)
    await asyncio.sleep(0.05)
    health = rig.manager.health("ls_plain")
    assert health is not None and health.protocol == "srt"
    assert health.video is not None and health.audio is not None
    link = health.srt
    assert link is not None
    assert link.encrypted is False and link.key_length == 0
    assert link.latency_ms == 120 and link.packets_received > 0
    assert link.loss_rate == 0.0 and link.packets_dropped == 0
    assert ("live", "ls_plain") in rig.directory.log
    frames = []
    while (item := reader.next_nowait()) is not None:
        if isinstance(item, Frame):
            frames.append(item)
    assert {f.track for f in frames} == {TrackKind.VIDEO, TrackKind.AUDIO}


@pytest.mark.parametrize(
    "streamid",
    [
        KEY,
        f"live/{KEY}",
        f"publish:live/{KEY}",
        f"#!::r=live/{KEY}",
        f"%23!::r=live/{KEY},m=publish",
        f"#!::m=publish,r=live/{KEY}",
    ],
)
async def test_stream_id_forms_accepted(streamid: str) -> None:
    rig = Rig()
    _, events = await rig.connect(streamid)
    assert srt.ConnectionEstablished in kinds(events), events


@pytest.mark.parametrize(
    ("streamid", "passphrase", "code", "reason"),
    [
        ("#!::r=live/sk_unknown,m=publish", None, 2403, "unknown-key"),
        (f"#!::r=live/{KEY},m=request", None, 2405, "protocol-error"),
        ("", None, 2401, "protocol-error"),
        (f"#!::live/{KEY}", None, 2400, "protocol-error"),  # no "r=": the parser quotes it
        (f"#!::r=live/{SECRET_KEY},m=publish", "wrong-passphrase-1", 1010, "bad-passphrase"),
        (f"#!::r=live/{SECRET_KEY},m=publish", None, 1011, "bad-passphrase"),
        (f"#!::r=live/{KEY},m=publish", PASS, 1011, "bad-passphrase"),
    ],
)
async def test_refusals_carry_the_right_code_and_reason(
    streamid: str, passphrase: str | None, code: int, reason: str
) -> None:
    rig = Rig()
    _, events = await rig.connect(streamid, passphrase)
    assert rejection(events) == code
    assert rig.server.counters.rejected[code] == 1
    assert [r.reason for r in rig.refusals.seen] == [reason]
    refusal = rig.refusals.seen[0]
    assert refusal.protocol == "srt" and refusal.remote == "127.0.0.1:40000"
    for key in (KEY, SECRET_KEY, "sk_unknown"):
        assert key not in refusal.attempted and key not in refusal.detail
    assert not rig.server.connections


async def test_bad_passphrase_refusal_is_tied_to_its_stream_and_releases_it() -> None:
    rig = Rig()
    _, events = await rig.connect(f"#!::r=live/{SECRET_KEY}", "wrong-passphrase-1")
    assert rejection(events) == 1010
    assert rig.refusals.seen[0].stream_id == "ls_secret"
    await asyncio.sleep(0.01)
    assert not rig.manager.is_publishing("ls_secret")
    # refused before the claim: no session was opened (no connecting -> ended blip)
    assert rig.directory.log == []
    assert len(rig.refusals.seen) == 1


async def test_wrong_passphrase_does_not_take_over_a_live_publisher() -> None:
    rig = Rig()
    await rig.connect(f"#!::r=live/{SECRET_KEY}", PASS)
    assert rig.manager.is_publishing("ls_secret")
    _, events = await rig.connect(
        f"#!::r=live/{SECRET_KEY}", "wrong-passphrase-1", addr=("127.0.0.1", 40002)
    )
    assert rejection(events) == 1010
    assert rig.manager.is_publishing("ls_secret")
    assert [entry[0] for entry in rig.directory.log] == ["opened"]


@pytest.mark.parametrize("pbkeylen", [16, 24, 32])
async def test_encrypted_publish_with_the_streams_passphrase(pbkeylen: int) -> None:
    rig = Rig()
    caller, events = await rig.connect(f"#!::r=live/{SECRET_KEY}", PASS, pbkeylen=pbkeylen)
    established = [e for e in events if isinstance(e, srt.ConnectionEstablished)]
    assert established and established[0].key_length == pbkeylen
    for payload in ts_payloads(0.5):
        caller.send(payload, rig.loop.time())
    await rig.exchange(caller)
    await asyncio.sleep(0.03)
    connection = next(iter(rig.server.connections.values()))
    assert connection.demux.stats.frames > 0
    health = rig.manager.health("ls_secret")
    assert health is not None
    link = health.srt
    assert link is not None and link.encrypted is True and link.key_length == pbkeylen


async def test_second_publisher_gets_2409_while_the_first_streams() -> None:
    rig = Rig()
    caller, _ = await rig.connect(KEY)
    caller.send(ts_payloads()[0], rig.loop.time())
    await rig.exchange(caller)
    _, events = await rig.connect(KEY, addr=("127.0.0.1", 40001))
    assert rejection(events) == 2409


async def test_close_sends_shutdown_and_releases_the_stream() -> None:
    rig = Rig()
    caller, _ = await rig.connect(KEY)
    connection = next(iter(rig.server.connections.values()))
    connection.close("stopped by the API")
    events = await rig.exchange(caller)
    assert srt.ConnectionClosed in kinds(events)
    assert not rig.server.connections and connection.finished
    await asyncio.sleep(0.01)
    assert not rig.manager.is_publishing("ls_plain")
    assert ("closed", "ls_plain") in rig.directory.log


async def test_peer_shutdown_releases_the_stream() -> None:
    rig = Rig()
    caller, _ = await rig.connect(KEY)
    caller.close()
    await rig.exchange(caller)
    assert not rig.server.connections
    assert not rig.manager.is_publishing("ls_plain")


async def test_max_connections_refuses_with_overload() -> None:
    rig = Rig(max_connections=1)
    await rig.connect(KEY)
    _, events = await rig.connect(SECRET_KEY, PASS, addr=("127.0.0.1", 40001))
    assert rejection(events) == 2402
    assert rig.server.counters.over_limit == 1
    assert [r.reason for r in rig.refusals.seen] == ["limits"]


async def test_not_mpegts_closes_only_that_connection() -> None:
    rig = Rig()
    caller, _ = await rig.connect(KEY)
    other, _ = await rig.connect(SECRET_KEY, PASS, addr=("127.0.0.1", 40001))
    for _ in range(60):
        caller.send(b"\x00" * 1316, rig.loop.time())
    events = await rig.exchange(caller)
    assert srt.ConnectionClosed in kinds(events)
    assert rig.server.counters.failures["bad_media"] == 1
    assert len(rig.server.connections) == 1
    assert not other.closed


async def test_garbage_datagrams_are_counted_not_fatal() -> None:
    rig = Rig()
    for junk in (b"", b"\x80" * 5, b"\x80\x00\x00\x00" + bytes(60), b"\x00" * 16 + b"x"):
        rig.server.datagram_received(junk, CALLER)
    await asyncio.sleep(0)
    stats = rig.server.listener_stats()
    assert stats is not None and stats.malformed + stats.unknown_destination >= 3
    _, events = await rig.connect(KEY)
    assert srt.ConnectionEstablished in kinds(events)


async def test_lost_packets_mark_a_ts_discontinuity() -> None:
    rig = Rig()
    caller, _ = await rig.connect(KEY)
    payloads = ts_payloads(0.5)
    caller.send(payloads[0][:700], rig.loop.time())  # ends inside a TS packet
    await rig.exchange(caller)
    connection = next(iter(rig.server.connections.values()))
    connection._handle([srt.PacketsDropped(first_seq=5, count=3, reason="too late")])
    assert rig.server.counters.dropped_packets == 3
    for payload in payloads[1:]:  # a partial packet would have glued onto these
        caller.send(payload, rig.loop.time())
    await rig.exchange(caller)
    await asyncio.sleep(0.03)  # the connection timer demuxes what is gathered
    assert connection.demux.stats.resyncs == 0
    assert connection.demux.stats.frames > 0


async def test_payloads_are_demuxed_in_batches_and_by_the_timer() -> None:
    rig = Rig()
    await rig.connect(KEY)
    connection = next(iter(rig.server.connections.values()))
    payloads = ts_payloads(4.0)
    assert len(payloads) > BATCH_PAYLOADS + 5
    data = [srt.DataReceived(p, 0, seq) for seq, p in enumerate(payloads)]
    connection._handle(data[: BATCH_PAYLOADS - 1])
    assert connection.demux.stats.packets == 0
    assert len(connection.pending) == BATCH_PAYLOADS - 1
    connection._handle(data[BATCH_PAYLOADS - 1 : BATCH_PAYLOADS])
    assert connection.demux.stats.packets == BATCH_PAYLOADS * 7 and not connection.pending
    connection._handle(data[BATCH_PAYLOADS : BATCH_PAYLOADS + 1])
    assert len(connection.pending) == 1
    connection.pump()  # re-arms the timer: MEDIA_DELAY, however idle the link
    await asyncio.sleep(MEDIA_DELAY * 3)
    assert connection.demux.stats.packets == (BATCH_PAYLOADS + 1) * 7


async def test_one_tick_drives_every_connection() -> None:
    """Four publishers, one loop timer for all of them (not one each), and each
    still gets full ACKs from it (its send buffer emptied, an RTT measured)."""
    rig = Rig()
    callers: dict[Any, srt.SrtConnection] = {}
    for port in range(40010, 40014):
        rig.directory.grants[f"sk_key{port}"] = StreamGrant(f"ls_{port}", "env_1", True, 0)
        addr = ("127.0.0.1", port)
        callers[addr], _ = await rig.connect(f"sk_key{port}", addr=addr)
    assert len(rig.server.connections) == 4
    payloads = ts_payloads(1.0)
    for i in range(10):  # only the tick sends full ACKs: route everything both ways
        for addr, caller in callers.items():
            for payload in payloads[i * 3 : i * 3 + 3]:
                caller.send(payload, rig.loop.time())
            for datagram in caller.datagrams_to_send():
                rig.server.datagram_received(datagram, addr)
        await asyncio.sleep(0.012)
        sent, rig.transport.sent = rig.transport.sent, []
        for datagram, to in sent:
            callers[to].receive(datagram, rig.loop.time())
    scheduled = getattr(rig.loop, "_scheduled", [])
    timers = [h for h in scheduled if not h.cancelled() and "._run" in repr(h)]
    assert len(timers) <= 2  # the tick (+ the listener's handshake timer)
    for caller in callers.values():
        stats = caller.stats()
        assert stats.packets_sent > 20 and stats.send_buffer == 0
        assert stats.rtt_ms < 100  # the start value until an ACK carried a measurement


async def test_datagrams_are_drained_in_place_and_only_when_needed() -> None:
    """A data packet costs no extra loop iteration: its payload lands in ``pending``
    at once; a gap's immediate NAK leaves within the same call."""
    rig = Rig()
    caller, _ = await rig.connect(KEY)
    connection = next(iter(rig.server.connections.values()))
    payloads = ts_payloads(0.5)[:3]
    for payload in payloads:
        caller.send(payload, rig.loop.time())
    first, lost, third = caller.datagrams_to_send()
    rig.transport.sent.clear()
    rig.server.datagram_received(first, CALLER)
    assert connection.pending == [payloads[0]]
    assert not rig.server._scheduled and not rig.transport.sent
    rig.server.datagram_received(third, CALLER)
    [(nak, to)] = rig.transport.sent
    assert to == CALLER and ControlPacket.decode(nak).type == ControlType.NAK
    rig.server.datagram_received(lost, CALLER)
    assert connection.pending == payloads


async def test_packets_given_up_break_the_ts_where_they_were() -> None:
    rig = Rig()
    await rig.connect(KEY)
    connection = next(iter(rig.server.connections.values()))
    payloads = ts_payloads(0.5)
    # what the core appends when it skips a hole: a None in place, then the event
    connection.pending.extend([payloads[0][:700], None, *payloads[1:]])
    connection._handle([srt.PacketsDropped(first_seq=5, count=3, reason="too late")])
    assert not connection.pending and connection._marked == 0
    assert connection.demux.stats.resyncs == 0
    assert connection.demux.stats.frames > 0
    assert rig.server.counters.dropped_packets == 3


def test_masked_streamid_never_shows_the_key() -> None:
    assert masked_streamid(f"#!::r=live/{KEY},m=publish") == "#!::r=live/sk_g****,m=publish"
    assert masked_streamid(f"%23!::r=live/{KEY}") == "#!::r=live/sk_g****"
    assert KEY not in masked_streamid(f"#!::r=live/{KEY},m=bogus")
    shown = masked_streamid(f"publish:live/{KEY}:alice:hunter2hunter2")
    assert shown == "publish:live/sk_g****:alice:hunt****"
    assert "hunter2" not in masked_streamid(f"#!::r=live/{KEY},u=alice,s=hunter2hunter2")


async def test_a_failing_store_answers_2500_not_a_timeout() -> None:
    rig = Rig()

    async def broken(stream_key: str) -> StreamGrant | None:
        raise RuntimeError("database is gone")

    rig.directory.authorize = broken  # type: ignore[method-assign]
    _, events = await rig.connect(KEY)
    assert rejection(events) == 2500
    assert rig.server.deciding == 0 and not rig.server.connections


async def test_stopped_while_the_key_is_checked_gets_2403() -> None:
    rig = Rig()
    original = rig.manager.claim

    async def claim_then_stop(
        key: str, publisher: Any, attempted: str = "", check: Any = None
    ) -> Any:
        claim = await original(key, publisher, attempted, check)
        publisher.close("stream stopped")  # what POST .../stop does to a publisher
        return claim

    rig.manager.claim = claim_then_stop  # type: ignore[method-assign]
    _, events = await rig.connect(KEY)
    assert rejection(events) == 2403
    await asyncio.sleep(0.01)
    assert not rig.server.connections and not rig.manager.is_publishing("ls_plain")


async def test_a_conclusion_flood_is_all_counted_and_sampled_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """2000 bad-key conclusions: every one refused and counted; at most
    ``refusal_log_per_second`` lines about them, then one line that sums up the rest."""
    caplog.set_level(logging.DEBUG, "relaycast")
    rig = Rig()
    rig.manager.refusals.log.clock = lambda: 50.0  # the whole flood in one window
    caller = srt.SrtConnection.caller(rig.loop.time(), streamid="#!::r=live/sk_nope,m=publish")
    [induction] = caller.datagrams_to_send()
    rig.server.datagram_received(induction, CALLER)
    await asyncio.sleep(0)
    for answer, _ in rig.transport.sent:
        caller.receive(answer, rig.loop.time())
    [conclusion] = caller.datagrams_to_send()
    for datagram in conclusion_flood(conclusion, 2000):
        rig.server.datagram_received(datagram, CALLER)
        await asyncio.sleep(0)
    for _ in range(20):
        await asyncio.sleep(0)
    assert rig.manager.refusals.counts["srt:unknown-key"] == 2000
    assert rig.server.counters.rejected[srt.RejectCode.FORBIDDEN] == 2000
    assert len(rig.refusals.seen) == 2000
    lines = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert len(lines) == 10  # refusal lines and "rejected with" lines share the budget
    assert {r.name for r in lines} == {"relaycast.ingest", "relaycast.srt"}
    rig.manager.refusals.log.flush()
    assert caplog.records[-1].getMessage() == (
        "3990 more refused-publish lines in the last 1 s not logged (all counted)"
    )


async def test_refused_callers_leave_nothing_for_the_cyclic_collector() -> None:
    """A flood of refused conclusions made one SrtIngestConnection each; held in a
    cycle by their timers they waited for a full collection, fragmenting the heap."""
    rig = Rig()
    gc.collect()
    gc.disable()
    try:
        for _ in range(3):
            _, events = await rig.connect("#!::r=live/sk_nope,m=publish")
            assert rejection(events) == srt.RejectCode.FORBIDDEN
        left = [o for o in gc.get_objects() if isinstance(o, SrtIngestConnection)]
        assert left == []
    finally:
        gc.enable()
