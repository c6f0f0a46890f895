"""Pushers and the manager against fake publishers on a real bus (no sockets).

What matters here is behaviour that needs no network: what a destination receives
first, isolation of a stuck destination, matching by id, healing, clean unpublish.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from server.bus import Stream, StreamGrant
from server.media.frame import TrackKind
from server.push.manager import PushManager
from server.push.ports import DestinationSpec
from server.push.rtmp_client import PublishRefused, RtmpClientError
from server.push.status import PushState
from server.settings import PushSettings
from tests.unit.bus.helpers import video
from tests.unit.push.fakes import (
    FakePublisher,
    SharedFakePublisher,
    live_stream,
    publish_gop,
    until,
)

FAST = PushSettings(
    retry_initial=0.02,
    retry_max=0.08,
    stall_timeout=0.2,
    close_timeout=0.2,
    queue_max_frames=256,
    batch_interval=0.005,
)


@pytest.fixture(autouse=True, params=["frames", "shared"])
def publisher_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with publishers that take frames (as SRT) and with publishers
    that take the shared pre-chunked bytes of the stream's fanout (as RTMP)."""
    if request.param == "shared":
        monkeypatch.setattr(FakeNetwork, "publisher", SharedFakePublisher)
    return str(request.param)


class FakeNetwork:
    """Connects by URL: ``refuse``/``down`` URLs fail, the rest give a FakePublisher."""

    publisher: type[FakePublisher] = FakePublisher

    def __init__(self) -> None:
        self.opened: dict[str, list[FakePublisher]] = {}
        self.down: set[str] = set()
        self.refuse: set[str] = set()

    async def __call__(self, url: str) -> FakePublisher:
        await asyncio.sleep(0)
        if url in self.refuse:
            raise PublishRefused("NetStream.Publish.BadName", f"{url} is not allowed")
        if url in self.down:
            raise RtmpClientError("connection refused")
        pub = self.publisher(url)
        self.opened.setdefault(url, []).append(pub)
        return pub

    def last(self, url: str) -> FakePublisher:
        return self.opened[url][-1]


class Source:
    def __init__(self, *specs: DestinationSpec) -> None:
        self.specs = list(specs)

    async def destinations(self, stream_id: str) -> list[DestinationSpec]:
        return list(self.specs)


class Errors:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str, str]] = []

    def destination_error(self, env: str, stream: str, dest: str, error: str) -> None:
        self.seen.append((env, stream, dest, error))


def spec(n: int, url: str | None = None, enabled: bool = True) -> DestinationSpec:
    url = url or f"rtmp://h{n}/live/key{n}"
    return DestinationSpec(f"dst_{n}", url, f"rtmp://h{n}/live/***", enabled, (f"key{n}",))


GRANT = StreamGrant("ls_1", "env_1", True, 60)


async def started(source: Source, net: FakeNetwork, stream: Stream) -> PushManager:
    manager = PushManager(source, FAST, connect=net)
    manager.stream_opened(GRANT, stream, "ses_1")
    return manager


async def test_a_destination_starts_at_the_latest_keyframe_with_configs() -> None:
    stream = live_stream()
    publish_gop(stream, 0, 45)  # keyframes at 0 and 30
    net = FakeNetwork()
    manager = await started(Source(spec(1)), net, stream)
    await until(lambda: "rtmp://h1/live/key1" in net.opened)
    pub = net.last("rtmp://h1/live/key1")
    await until(lambda: len(pub.frames()) >= 30)
    kinds = [kind for kind, _ in pub.sent[:3]]
    assert kinds == ["meta", "config", "config"]
    first = pub.frames()[0]
    assert first.keyframe and first.track is TrackKind.VIDEO and first.dts == 0
    assert manager.status("ls_1", "dst_1").state is PushState.ACTIVE  # type: ignore[union-attr]
    stream.end("session over")
    await until(lambda: pub.closed)
    await until(lambda: manager.status("ls_1", "dst_1").state is PushState.IDLE)  # type: ignore[union-attr]
    await manager.shutdown()


async def test_a_stuck_destination_drops_alone_then_errors() -> None:
    stream = live_stream()
    net = FakeNetwork()
    errors = Errors()
    manager = await started(Source(spec(1), spec(2)), net, stream)
    manager.listeners.append(errors)
    await until(lambda: len(net.opened) == 2)
    stuck, fine = net.last("rtmp://h1/live/key1"), net.last("rtmp://h2/live/key2")
    stuck.writable = False
    stuck.reading.clear()
    for gop in range(6):
        publish_gop(stream, gop * 30)
        await asyncio.sleep(0.02)
    await until(lambda: len(fine.frames()) == 360)
    assert manager.status("ls_1", "dst_2").dropped_frames == 0  # type: ignore[union-attr]
    status = manager.status("ls_1", "dst_1")
    assert status is not None and status.dropped_frames > 0
    await until(lambda: manager.status("ls_1", "dst_1").state is not PushState.ACTIVE)  # type: ignore[union-attr]
    await until(lambda: bool(errors.seen))
    assert errors.seen[0][:3] == ("env_1", "ls_1", "dst_1")
    assert "stopped reading" in errors.seen[0][3]
    assert manager.status("ls_1", "dst_2").state is PushState.ACTIVE  # type: ignore[union-attr]
    assert len(net.opened["rtmp://h2/live/key2"]) == 1
    await manager.shutdown()


async def test_refusals_are_named_scrubbed_and_retried_with_growing_delays() -> None:
    stream = live_stream()
    net = FakeNetwork()
    net.refuse.add("rtmp://h1/live/key1")
    manager = await started(Source(spec(1)), net, stream)
    retry_gaps: list[float] = []
    last_retry = None
    for _ in range(200):
        status = manager.status("ls_1", "dst_1")
        if status is not None and status.next_retry_at and status.next_retry_at != last_retry:
            last_retry = status.next_retry_at
            retry_gaps.append(status.next_retry_at)
        if len(retry_gaps) >= 3:
            break
        await asyncio.sleep(0.005)
    status = manager.status("ls_1", "dst_1")
    assert status is not None and status.state in (PushState.ERROR, PushState.CONNECTING)
    assert status.last_error is not None
    assert "refused by the destination: NetStream.Publish.BadName" in status.last_error
    assert "key1" not in status.last_error
    assert status.reconnects >= 2
    net.refuse.clear()
    await until(lambda: manager.status("ls_1", "dst_1").state is PushState.ACTIVE)  # type: ignore[union-attr]
    await manager.shutdown()


async def test_changes_are_matched_by_id() -> None:
    stream = live_stream()
    net = FakeNetwork()
    source = Source(spec(1), spec(2), spec(3))
    manager = await started(source, net, stream)
    await until(lambda: len(net.opened) == 3)
    one, three = net.last("rtmp://h1/live/key1"), net.last("rtmp://h3/live/key3")
    # remove the middle one, change the last one's URL, add a new one
    source.specs = [spec(1), spec(3, url="rtmp://h9/live/key3"), spec(4)]
    await manager.refresh("ls_1")
    await until(lambda: "rtmp://h9/live/key3" in net.opened and "rtmp://h4/live/key4" in net.opened)
    await until(lambda: net.last("rtmp://h2/live/key2").closed and three.closed)
    assert not one.closed and len(net.opened["rtmp://h1/live/key1"]) == 1
    assert manager.status("ls_1", "dst_2") is None
    await until(lambda: manager.status("ls_1", "dst_3").state is PushState.ACTIVE)  # type: ignore[union-attr]
    assert manager.status("ls_1", "dst_3").reconnects == 1  # type: ignore[union-attr]
    # disabling stops only that one
    source.specs = [spec(1), spec(3, url="rtmp://h9/live/key3", enabled=False), spec(4)]
    await manager.refresh("ls_1")
    await until(lambda: net.last("rtmp://h9/live/key3").closed)
    assert manager.status("ls_1", "dst_3") is None and not one.closed
    await manager.shutdown()
    assert one.closed


async def test_encoder_away_keeps_the_push_and_timestamps_continue() -> None:
    stream = live_stream()
    net = FakeNetwork()
    manager = await started(Source(spec(1)), net, stream)
    await until(lambda: "rtmp://h1/live/key1" in net.opened)
    pub = net.last("rtmp://h1/live/key1")
    await asyncio.sleep(0.05)
    publish_gop(stream, 0)
    await until(lambda: len(pub.frames()) == 60)
    await asyncio.sleep(0.05)  # encoder gone, nothing flows
    stream.mark_discontinuity()
    publish_gop(stream, 0)  # its clock restarted
    await until(lambda: len(pub.frames()) == 120)
    assert len(net.opened["rtmp://h1/live/key1"]) == 1 and not pub.closed
    videos = [f.dts for f in pub.frames() if f.track is TrackKind.VIDEO]
    assert videos == sorted(videos) and videos[30] > videos[29]
    await manager.shutdown()


async def test_a_connection_lost_while_idle_is_noticed() -> None:
    stream = live_stream()
    net = FakeNetwork()
    manager = await started(Source(spec(1)), net, stream)
    await until(lambda: "rtmp://h1/live/key1" in net.opened)
    net.last("rtmp://h1/live/key1").error = RtmpClientError("connection lost")
    await until(lambda: len(net.opened["rtmp://h1/live/key1"]) == 2, within=5)
    status = manager.status("ls_1", "dst_1")
    assert status is not None and status.last_error == "connection lost"
    await manager.shutdown()


async def test_racing_changes_leave_one_connection_with_the_latest_url() -> None:
    stream = live_stream()
    net = FakeNetwork()
    source = Source(spec(1))
    manager = await started(source, net, stream)
    await until(lambda: "rtmp://h1/live/key1" in net.opened)
    source.specs = [spec(1, url="rtmp://h7/live/key1")]
    first = asyncio.create_task(manager.refresh("ls_1"))
    await asyncio.sleep(0)
    source.specs = [spec(1, url="rtmp://h8/live/key1")]
    await asyncio.gather(first, manager.refresh("ls_1"))
    await until(lambda: "rtmp://h8/live/key1" in net.opened)
    await asyncio.sleep(0.1)
    live = [p for pubs in net.opened.values() for p in pubs if not p.closed]
    assert [p.url for p in live] == ["rtmp://h8/live/key1"]
    await manager.shutdown()


async def test_a_new_rendition_reconnects_the_destination_to_that_rendition() -> None:
    stream, rung = live_stream(), live_stream()
    net = FakeNetwork()
    source = Source(spec(1))
    manager = await started(source, net, stream)
    manager.renditions = lambda stream_id, name: (
        rung if (stream_id, name) == ("ls_1", "360p") else None
    )
    url = "rtmp://h1/live/key1"
    await until(lambda: url in net.opened)
    first = net.last(url)
    source.specs = [replace(spec(1), rendition="360p")]
    await manager.refresh("ls_1")
    await until(lambda: len(net.opened[url]) == 2 and first.closed)
    for n in range(30):
        rung.publish(video(n, key=n == 0, size=100))
    await until(lambda: len(net.last(url).frames()) == 30)
    assert {len(f.payload) for f in net.last(url).frames()} == {100}
    await manager.shutdown()
