"""IngestManager rules without sockets: auth, one publisher per key, takeover, windows."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from server.bus import PlanLimits, Registry, StreamGrant
from server.ingest.health import VideoFigures
from server.ingest.manager import IngestManager
from server.ingest.refusals import RefusalReason, Refused
from server.media.frame import CodecConfig, Frame, TrackKind
from server.settings import IngestSettings


@dataclass
class FakeDirectory:
    grants: dict[str, StreamGrant]
    log: list[tuple[str, ...]] = field(default_factory=list)
    closed_bytes: list[int] = field(default_factory=list)

    async def authorize(self, stream_key: str) -> StreamGrant | None:
        return self.grants.get(stream_key)

    async def session_opened(self, stream_id: str, protocol: str, remote: str, at: datetime) -> str:
        self.log.append(("opened", stream_id))
        return f"ses_{len(self.log)}"

    async def stream_live(self, stream_id: str, at: datetime) -> None:
        self.log.append(("live", stream_id))

    async def session_closed(
        self, stream_id: str, session_id: str, at: datetime, bytes_in: int, error: str | None
    ) -> None:
        self.log.append(("closed", stream_id, session_id, error or ""))
        self.closed_bytes.append(bytes_in)


@dataclass(eq=False)
class FakePublisher:
    remote: str = "127.0.0.1:1"
    protocol: str = "rtmp"
    closed: str | None = None

    def close(self, reason: str) -> None:
        self.closed = reason


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def grant(window: int = 1, enabled: bool = True) -> StreamGrant:
    return StreamGrant("ls_1", "env_1", enabled, window)


def make(window: int = 1, enabled: bool = True) -> tuple[IngestManager, FakeDirectory, Clock]:
    directory = FakeDirectory({"sk_good": grant(window, enabled)})
    clock = Clock()
    manager = IngestManager(
        directory, Registry(), IngestSettings(takeover_silence_seconds=3), clock
    )
    return manager, directory, clock


VIDEO = CodecConfig(TrackKind.VIDEO, "h264", b"\x01", width=640, height=360)


def key_frame(dts: int) -> Frame:
    return Frame(TrackKind.VIDEO, "h264", dts, dts, True, b"\x00\x00\x00\x01\x65")


async def went_live_and_left(manager: IngestManager) -> None:
    """A publisher that was live and dropped: its reconnect window is open."""
    claim = await manager.claim("sk_good", FakePublisher())
    claim.frame(key_frame(0))
    manager.release(claim, "gone")


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_unknown_and_stopped_keys_are_refused_and_counted() -> None:
    manager, _, _ = make(enabled=False)
    with pytest.raises(Refused) as unknown:
        await manager.claim("sk_bad", FakePublisher())
    assert unknown.value.reason is RefusalReason.UNKNOWN_KEY
    with pytest.raises(Refused) as stopped:
        await manager.claim("sk_good", FakePublisher())
    assert stopped.value.reason is RefusalReason.STOPPED
    assert manager.refusals.counts == {"rtmp:unknown-key": 1, "rtmp:stream-stopped": 1}


async def test_first_media_goes_live_and_health_reports_it() -> None:
    manager, directory, clock = make()
    claim = await manager.claim("sk_good", FakePublisher())
    assert directory.log == [("opened", "ls_1")]
    claim.received(1000, clock.now)
    claim.config(VIDEO)
    claim.frame(key_frame(0))
    claim.frame(key_frame(180_000))
    await settle()
    assert ("live", "ls_1") in directory.log
    health = manager.health("ls_1")
    assert health is not None
    assert health.protocol == "rtmp" and health.bytes_in == 1000
    assert manager.live_bytes(health.session_id) == 1000
    assert manager.live_bytes("ses_other") is None
    assert health.video == VideoFigures(
        codec="h264", width=640, height=360, fps=0.5, keyframe_interval=2.0
    )


async def test_second_publisher_refused_while_first_is_active() -> None:
    manager, _, clock = make()
    first = FakePublisher()
    claim = await manager.claim("sk_good", first)
    clock.now += 2.9
    claim.received(10, clock.now)
    clock.now += 2.9
    with pytest.raises(Refused) as refused:
        await manager.claim("sk_good", FakePublisher())
    assert refused.value.reason is RefusalReason.IN_USE and first.closed is None


async def test_silent_publisher_is_taken_over_in_the_same_session() -> None:
    manager, directory, clock = make()
    first, second = FakePublisher(), FakePublisher(remote="127.0.0.1:2")
    old = await manager.claim("sk_good", first)
    clock.now += 3.5
    new = await manager.claim("sk_good", second)
    assert first.closed and second.closed is None
    assert directory.log == [("opened", "ls_1")]
    manager.release(old, "stale connection finally closed")  # must not end the new one
    await settle()
    assert manager.is_publishing("ls_1") and new.current and not old.current


async def test_reconnect_inside_window_keeps_the_session() -> None:
    manager, directory, _ = make(window=1)
    await went_live_and_left(manager)
    await asyncio.sleep(0.2)
    again = await manager.claim("sk_good", FakePublisher())
    again.frame(key_frame(90_000))
    await asyncio.sleep(1.2)
    assert [e[0] for e in directory.log].count("opened") == 1
    assert not any(e[0] == "closed" for e in directory.log)
    manager.release(again, "gone")
    await asyncio.sleep(1.2)
    assert directory.log[-1][0] == "closed" and manager.health("ls_1") is None


async def test_health_keeps_the_last_figures_while_the_encoder_is_away() -> None:
    manager, _, clock = make(window=5)
    claim = await manager.claim("sk_good", FakePublisher(remote="10.0.0.7:5000"))
    claim.received(4000, clock.now)
    claim.config(VIDEO)
    claim.frame(key_frame(0))
    claim.frame(key_frame(180_000))
    await settle()
    before = manager.health("ls_1")
    assert before is not None and before.encoder_connected is True
    assert before.encoder_left_at is None
    manager.release(claim, "gone")
    clock.now += 4  # the bitrate window would have emptied by now
    away = manager.health("ls_1")
    assert away is not None, "figures dropped while the encoder is inside the window"
    assert away.encoder_connected is False and isinstance(away.encoder_left_at, datetime)
    for same in ("protocol", "remote_address", "session_id", "bytes_in", "bitrate", "video"):
        assert getattr(away, same) == getattr(before, same), same
    assert not manager.is_publishing("ls_1")
    [away_session] = manager.open_sessions()  # a crash now ends the session when it left
    assert away_session.last_seen == away.encoder_left_at
    back = await manager.claim("sk_good", FakePublisher(remote="10.0.0.7:5001"))
    again = manager.health("ls_1")
    assert again is not None and again.encoder_connected is True
    assert again.encoder_left_at is None and again.remote_address == "10.0.0.7:5001"
    manager.release(back, "gone")


async def test_window_over_ends_the_session_and_a_new_publish_opens_another() -> None:
    manager, directory, clock = make(window=1)
    claim = await manager.claim("sk_good", FakePublisher())
    claim.received(500, clock.now)
    claim.frame(key_frame(0))
    manager.release(claim, "gone")
    await asyncio.sleep(1.2)
    assert directory.closed_bytes == [500]
    await manager.claim("sk_good", FakePublisher())
    assert [e[0] for e in directory.log].count("opened") == 2


async def test_never_live_session_ends_at_once() -> None:
    manager, directory, _ = make(window=60)
    claim = await manager.claim("sk_good", FakePublisher())
    manager.release(claim, "gone before media")
    await settle()
    assert directory.log[-1][0] == "closed"


async def test_disconnect_for_stop_ends_now_and_for_rotation_keeps_the_window() -> None:
    manager, directory, _ = make(window=60)
    pub = FakePublisher()
    claim = await manager.claim("sk_good", pub)
    claim.frame(key_frame(0))
    assert await manager.disconnect("ls_1", end_session=False, reason="stream key rotated")
    assert pub.closed == "stream key rotated"
    manager.release(claim, "closed")
    await settle()
    assert not any(e[0] == "closed" for e in directory.log)
    assert not await manager.disconnect("ls_1", end_session=True, reason="stream stopped")
    assert directory.log[-1][0] == "closed"
    assert not await manager.disconnect("ls_1", end_session=True, reason="again")


async def test_shutdown_ends_every_session() -> None:
    manager, directory, _ = make(window=60)
    pub = FakePublisher()
    (await manager.claim("sk_good", pub)).frame(key_frame(0))
    await manager.shutdown()
    assert pub.closed and directory.log[-1][0] == "closed"


async def test_plan_limits_end_the_session_in_error() -> None:
    limits = PlanLimits(max_width=1280, max_height=720, max_frame_rate=30, max_bitrate=1_000_000)
    directory = FakeDirectory({"sk_good": StreamGrant("ls_1", "env_1", True, 60, limits=limits)})
    clock = Clock()
    manager = IngestManager(directory, Registry(), IngestSettings(), clock)
    pub = FakePublisher()
    claim = await manager.claim("sk_good", pub)
    claim.config(CodecConfig(TrackKind.VIDEO, "h264", b"\x01", width=1920, height=1080))
    await settle()
    assert pub.closed and "1920x1080 exceeds" in pub.closed
    assert directory.log[-1][0] == "closed" and "exceeds" in directory.log[-1][3]
    assert manager.refusals.counts["rtmp:limits"] == 1


async def test_sustained_bitrate_over_the_plan_is_cut_after_settling() -> None:
    limits = PlanLimits(max_width=1280, max_height=720, max_frame_rate=30, max_bitrate=1_000_000)
    directory = FakeDirectory({"sk_good": StreamGrant("ls_1", "env_1", True, 60, limits=limits)})
    clock = Clock()
    manager = IngestManager(directory, Registry(), IngestSettings(), clock)
    pub = FakePublisher()
    claim = await manager.claim("sk_good", pub)
    for _ in range(40):  # 10 s at 4 Mbit/s, in quarter-second steps
        clock.now += 0.25
        claim.received(125_000, clock.now)
        if pub.closed:
            break
    await settle()
    assert pub.closed and "bitrate" in pub.closed
    assert clock.now - 100.0 >= 5.0  # not before the settling period


class _CheckRefused(Refused):
    """A protocol's own refusal, carrying what the protocol needs to answer with."""

    def __init__(self) -> None:
        super().__init__(RefusalReason.BAD_PASSPHRASE, "wrong passphrase")
        self.code = 1010


async def test_a_protocol_check_s_refusal_is_raised_as_is_and_leaves_no_session() -> None:
    manager, directory, _ = make()
    failed = _CheckRefused()
    with pytest.raises(Refused) as refused:
        await manager.claim("sk_good", FakePublisher(), "app/sk_g****", lambda _: failed)
    assert refused.value is failed and failed.code == 1010
    assert manager.refusals.counts == {"rtmp:bad-passphrase": 1}
    assert directory.log == [] and not manager.is_publishing("ls_1")


async def test_disconnect_inside_a_running_window_keeps_its_deadline() -> None:
    manager, directory, _ = make(window=1)
    await went_live_and_left(manager)
    await asyncio.sleep(0.6)
    assert not await manager.disconnect("ls_1", end_session=False, reason="stream key rotated")
    await asyncio.sleep(0.6)  # 1.2 s after the encoder left: the first window is over
    assert directory.log[-1][0] == "closed" and manager.health("ls_1") is None
