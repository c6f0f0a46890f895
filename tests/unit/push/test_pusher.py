"""One Pusher against fake publishers on a real bus, with the pusher's clock faked.

The pusher's own clock (status times, retry times) is a :class:`FakeClock` the test
moves, so "no retry before the backoff has elapsed" is checked exactly; the batch
interval and the stall timeout are event-loop sleeps and stay real but short.

Every test runs twice: with publishers that take frames (a pusher's own feed, as
SRT) and with publishers that take shared pre-chunked bytes (the stream's fanout, as
RTMP), recorded alike (``tests.unit.push.fakes``).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from server.bus import Stream
from server.media.frame import CodecConfig, Frame, TrackKind
from server.push.ports import BatchWriter, DestinationSpec, Refused
from server.push.pusher import RENDITION_WAIT, Pusher, _Feed, describe
from server.push.rtmp_client import PublishRefused, RtmpClientError
from server.push.srt_client import SrtPublishRefused
from server.push.status import DestinationStatus, PushState
from server.settings import PushSettings
from tests.unit.bus.helpers import AUDIO_CONFIG, VIDEO_CONFIG, video
from tests.unit.push.fakes import (
    FakePublisher,
    SharedFakePublisher,
    live_stream,
    publish_gop,
    until,
)

SETTINGS = PushSettings(
    retry_initial=0.05,
    retry_max=1.0,
    stall_timeout=5.0,
    close_timeout=0.2,
    queue_max_frames=128,
    batch_interval=0.005,
)
SPEC = DestinationSpec("dst_1", "rtmp://h1/live/key1", "rtmp://h1/live/***", True, ("key1",))
START = 1000.0
PUBLISHER: type[FakePublisher] = FakePublisher
"""What a connection opens unless a test says otherwise (see ``publisher_kind``)."""


@pytest.fixture(autouse=True, params=["frames", "shared"])
def publisher_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "shared":
        monkeypatch.setattr(sys.modules[__name__], "PUBLISHER", SharedFakePublisher)
    return str(request.param)


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class BadKey(Refused):
    """A refusal of a protocol the pusher has never heard of."""

    @property
    def reason(self) -> str:
        return "key key1 is not allowed"


class Dialer:
    """``Connect``: fails with the queued exceptions first, then opens publishers."""

    def __init__(self, failures: list[Exception], make: Callable[[], FakePublisher]) -> None:
        self.failures = failures
        self.make = make
        self.attempts = 0
        self.opened: list[FakePublisher] = []

    async def __call__(self, url: str) -> FakePublisher:
        assert url == SPEC.url
        self.attempts += 1
        await asyncio.sleep(0)
        if self.failures:
            raise self.failures.pop(0)
        publisher = self.make()
        self.opened.append(publisher)
        return publisher


@dataclass
class Rig:
    """A started pusher with everything the test controls around it."""

    stream: Stream
    dialer: Dialer
    pusher: Pusher
    clock: FakeClock
    errors: list[str] = field(default_factory=list)

    @property
    def status(self) -> DestinationStatus:
        return self.pusher.snapshot()

    def retry_time(self) -> None:
        """Move the pusher's clock to the retry time it set."""
        retry_at = self.status.next_retry_at
        assert retry_at is not None
        self.clock.now = retry_at

    async def first_gop(self) -> FakePublisher:
        """Wait for a connection and push GOP 0 (60 frames) through it."""
        await until(lambda: bool(self.dialer.opened))
        publisher = self.dialer.opened[0]
        publish_gop(self.stream, 0)
        await until(lambda: len(publisher.frames()) == 60)
        return publisher


def rig(
    *failures: Exception,
    settings: PushSettings = SETTINGS,
    make: Callable[[], FakePublisher] | None = None,
    stream: Stream | None = None,
) -> Rig:
    stream = stream or live_stream()
    dialer = Dialer(list(failures), make or PUBLISHER)
    clock = FakeClock()
    errors: list[str] = []
    pusher = Pusher(SPEC, stream, dialer, settings, clock=clock, on_error=errors.append)
    pusher.start()
    return Rig(stream, dialer, pusher, clock, errors)


def assert_opens_at(publisher: FakePublisher, keyframe: int) -> None:
    """Metadata and both configs first, then the keyframe ``keyframe`` rebased to 0."""
    assert [kind for kind, _ in publisher.sent[:3]] == ["meta", "config", "config"]
    assert [c for _, c in publisher.sent[1:3]] == [VIDEO_CONFIG, AUDIO_CONFIG]
    first = publisher.frames()[0]
    assert first.keyframe and first.track is TrackKind.VIDEO and first.dts == 0
    assert first.payload == video(keyframe, size=400).payload


async def test_a_connection_starts_at_the_latest_keyframe_with_metadata_and_configs() -> None:
    stream = live_stream()
    publish_gop(stream, 0, 45)  # keyframes at 0 and 30
    r = rig(stream=stream)
    await until(lambda: bool(r.dialer.opened) and len(r.dialer.opened[0].frames()) >= 30)
    pub = r.dialer.opened[0]
    assert_opens_at(pub, 30)  # the GOP at 30, not the one at 0
    meta = pub.sent[0][1]
    assert isinstance(meta, dict) and meta["width"] == 1280 and meta["audiosamplerate"] == 44100
    videos = [f for f in pub.frames() if f.track is TrackKind.VIDEO]
    assert len(videos) == 15 and videos[-1].payload == video(44, size=400).payload
    assert r.status.state is PushState.ACTIVE and r.status.connected_at == START
    assert r.status.bytes_sent == pub.bytes_sent and r.status.reconnects == 0
    stream.end("session over")
    await until(lambda: r.pusher.done)
    ended = r.pusher.snapshot()
    assert pub.closed and ended.state is PushState.IDLE and ended.connected_at is None


async def test_a_refusal_is_an_error_retried_only_when_the_backoff_has_elapsed() -> None:
    r = rig(BadKey(), BadKey())
    publish_gop(r.stream, 0)
    await until(lambda: r.status.state is PushState.ERROR)
    assert r.status.last_error == "refused by the destination: key *** is not allowed"
    assert r.errors == [r.status.last_error]
    assert r.status.next_retry_at is not None
    assert 0.75 * 0.05 <= r.status.next_retry_at - START <= 0.05

    await asyncio.sleep(0.2)  # on the pusher's clock no time has passed: no retry yet
    assert r.dialer.attempts == 1 and r.status.state is PushState.ERROR

    r.retry_time()
    await until(lambda: r.dialer.attempts == 2 and r.status.state is PushState.ERROR)
    assert r.status.reconnects == 1 and r.status.next_retry_at is not None
    assert 0.75 * 0.1 <= r.status.next_retry_at - r.clock.now <= 0.1  # doubled
    assert len(r.errors) == 1  # one outage, one report

    r.retry_time()
    await until(lambda: r.status.state is PushState.ACTIVE)
    assert r.dialer.attempts == 3 and r.status.reconnects == 2
    assert r.status.connected_at == r.clock.now and r.status.next_retry_at is None
    await until(lambda: bool(r.dialer.opened[0].frames()))
    assert_opens_at(r.dialer.opened[0], 0)
    await r.pusher.stop()
    assert r.dialer.opened[0].closed and r.status.state is PushState.IDLE


async def test_a_slow_destination_drops_to_the_next_keyframe_and_counts_it() -> None:
    r = rig()
    pub = await r.first_gop()
    pub.stall()
    for gop in range(1, 6):  # 300 frames against a queue of 128 items
        publish_gop(r.stream, gop * 30)
        await asyncio.sleep(0.01)
    assert r.status.dropped_frames > 0
    assert r.status.state is PushState.ACTIVE  # within stall_timeout: only frames are lost
    pub.resume()
    last = video(179, size=400).payload
    await until(lambda: any(f.payload == last for f in pub.frames()))
    after_gap = [f for f in pub.frames()[60:] if f.track is TrackKind.VIDEO]
    assert after_gap[0].keyframe  # resumed at a keyframe, never mid-GOP
    assert r.status.dropped_frames == 360 - len(pub.frames())
    assert len(r.dialer.opened) == 1 and not r.errors
    await r.pusher.stop()


async def test_a_stalled_destination_fails_and_reconnects_at_the_latest_keyframe() -> None:
    r = rig(settings=SETTINGS.model_copy(update={"stall_timeout": 0.2}))
    first = await r.first_gop()
    first.stall()
    publish_gop(r.stream, 30)
    await until(lambda: r.status.state is PushState.ERROR)
    assert first.closed
    assert r.status.last_error == "destination stopped reading for 0.2 s"
    assert r.errors == [r.status.last_error]
    r.retry_time()
    await until(lambda: len(r.dialer.opened) == 2 and len(r.dialer.opened[1].frames()) == 60)
    assert_opens_at(r.dialer.opened[1], 30)
    assert r.status.state is PushState.ACTIVE and r.status.reconnects == 1
    await r.pusher.stop()


async def test_a_lost_connection_reconnects_and_counters_add_up() -> None:
    r = rig()
    first = await r.first_gop()
    first.error = RtmpClientError("connection lost")
    await until(lambda: r.status.state is PushState.ERROR)
    assert r.status.last_error == "connection lost" and r.errors == ["connection lost"]
    assert r.status.bytes_sent == first.bytes_sent and first.closed
    publish_gop(r.stream, 30)  # while the destination waits to retry
    r.retry_time()
    await until(lambda: len(r.dialer.opened) == 2 and len(r.dialer.opened[1].frames()) == 60)
    second = r.dialer.opened[1]
    assert_opens_at(second, 30)
    assert r.status.state is PushState.ACTIVE and r.status.reconnects == 1
    assert r.status.bytes_sent == first.bytes_sent + second.bytes_sent
    await r.pusher.stop()
    assert second.closed


class CountingWriter:
    """A batching writer: holds items, is ``full`` at ``size`` of them."""

    def __init__(self, publisher: BatchingPublisher, size: int) -> None:
        self.publisher = publisher
        self.size = size
        self.held: list[object] = []

    @property
    def full(self) -> bool:
        return len(self.held) >= self.size

    def frame(self, frame: Frame) -> None:
        self.held.append(frame)

    def config(self, config: CodecConfig, timestamp_ms: int) -> None:
        self.held.append(config)

    def flush(self) -> None:
        if self.held:
            self.publisher.batches.append(list(self.held))
            self.held.clear()
            if self.publisher.full_after_batch:
                self.publisher.stall()


class BatchingPublisher(FakePublisher):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[object]] = []
        self.full_after_batch = False

    def batch_writer(self) -> BatchWriter:
        return CountingWriter(self, 16)


async def test_media_goes_out_through_the_publishers_batch_writer() -> None:
    r = rig(make=BatchingPublisher)
    await until(lambda: bool(r.dialer.opened))
    pub = r.dialer.opened[0]
    assert isinstance(pub, BatchingPublisher)
    publish_gop(r.stream, 0, 5)  # 10 frames: less than a full batch, one write per wake-up
    await until(lambda: bool(pub.batches))
    assert [len(b) for b in pub.batches] == [12]  # two configs + ten frames
    assert pub.frames() == [] and [k for k, _ in pub.sent] == ["meta"]

    pub.full_after_batch = True  # the transport fills up with the next full batch
    publish_gop(r.stream, 5, 20)  # 40 frames
    await until(lambda: len(pub.batches) == 2)
    await asyncio.sleep(0.05)
    assert [len(b) for b in pub.batches] == [12, 16]  # it stopped taking once full
    pub.full_after_batch = False
    pub.resume()
    await until(lambda: sum(len(b) for b in pub.batches) == 12 + 40)
    await r.pusher.stop()


def test_refusals_of_either_protocol_are_named_the_same_way() -> None:
    rtmp = PublishRefused("NetStream.Publish.BadName", "key1 is in use")
    bare = PublishRefused("NetConnection.Connect.Rejected", "")
    srt = SrtPublishRefused(1010, "wrong passphrase")
    assert all(isinstance(exc, Refused) for exc in (rtmp, bare, srt))
    assert (
        describe(rtmp, SPEC)
        == "refused by the destination: NetStream.Publish.BadName (*** is in use)"
    )
    assert describe(bare, SPEC) == "refused by the destination: NetConnection.Connect.Rejected"
    assert (
        describe(srt, SPEC) == "refused by the destination: SRT rejection 1010 (wrong passphrase)"
    )
    assert describe(TimeoutError(), SPEC) == "timed out"
    assert (
        describe(RtmpClientError("rtmp://h1/live/key1: reset"), SPEC) == "rtmp://h1/live/***: reset"
    )


# ---------------------------------------------------------------- renditions

RUNG = DestinationSpec("dst_1", SPEC.url, SPEC.redacted, True, SPEC.secrets, rendition="360p")


def rendition_rig(renditions: dict[str, Stream]) -> Rig:
    stream = live_stream()
    dialer = Dialer([], PUBLISHER)
    clock = FakeClock()
    pusher = Pusher(RUNG, stream, dialer, SETTINGS, clock=clock, renditions=renditions.get)
    pusher.start()
    return Rig(stream, dialer, pusher, clock)


def publish_rung(stream: Stream, start: int, count: int = 30) -> None:
    """Frames of a rendition: smaller than the source's (size 400), so told apart."""
    for n in range(start, start + count):
        stream.publish(video(n, key=n % 30 == 0, size=100))


async def test_a_destination_pushes_its_rendition_and_follows_it_across_a_worker_restart() -> None:
    first = live_stream()
    renditions = {"360p": first}
    r = rendition_rig(renditions)
    await until(lambda: bool(r.dialer.opened))
    publish_gop(r.stream, 0)
    publish_rung(first, 0)
    pub = r.dialer.opened[0]
    await until(lambda: len(pub.frames()) == 30)
    assert all(len(f.payload) == 100 for f in pub.frames())  # the rung, never the source
    # the worker died: its rendition stream ends, a new one replaces it
    second = live_stream()
    renditions["360p"] = second
    first.end("transcode worker restarted")
    await until(lambda: len(r.dialer.opened) == 2)
    publish_gop(r.stream, 30)
    publish_rung(second, 30)
    again = r.dialer.opened[1]
    await until(lambda: len(again.frames()) == 30)
    assert all(len(f.payload) == 100 for f in again.frames())
    assert pub.closed and r.status.state is PushState.ACTIVE and not r.pusher.done
    r.stream.end("session over")
    second.end("transcoding stopped")  # the transcoder ends its renditions with the source
    await until(lambda: r.pusher.done)
    assert again.closed and len(r.dialer.opened) == 2


async def test_a_late_rendition_gets_the_source_meanwhile_then_the_rung() -> None:
    renditions: dict[str, Stream] = {}
    r = rendition_rig(renditions)
    await asyncio.sleep(0.3)
    assert not r.dialer.opened  # waiting for the rung while the worker starts
    r.clock.now += RENDITION_WAIT
    await until(lambda: bool(r.dialer.opened))
    publish_gop(r.stream, 0)
    first = r.dialer.opened[0]
    await until(lambda: len(first.frames()) == 60)
    assert {len(f.payload) for f in first.frames()} == {400, 12}  # the source's
    # the rung comes at last: the destination moves to it
    rung = live_stream()
    renditions["360p"] = rung
    await until(lambda: len(r.dialer.opened) == 2)
    publish_rung(rung, 30)
    await until(lambda: len(r.dialer.opened[1].frames()) == 30)
    assert first.closed and {len(f.payload) for f in r.dialer.opened[1].frames()} == {100}
    await r.pusher.stop()


async def test_a_session_that_ends_while_the_rung_is_awaited_never_connects() -> None:
    r = rendition_rig({})
    await asyncio.sleep(0.1)
    r.stream.end("session over")
    await until(lambda: r.pusher.done)
    assert r.dialer.attempts == 0 and r.status.state is PushState.IDLE


async def test_a_due_batch_goes_out_at_the_publish_not_on_a_timer() -> None:
    """The feed wakes with the publisher: once a send is due, the next publish goes out
    in its own loop turn (a timer of the feed's own cost a process wake-up per send)."""
    stream = live_stream()
    publish_gop(stream, 0, 1)
    reader = stream.reader("push", "push", max_frames=128)
    publisher = FakePublisher()
    feed = _Feed(publisher, reader, stall=5.0, interval=0.05)
    task = asyncio.create_task(feed.run())
    await asyncio.sleep(0.06)  # past due, before a 50 ms timer's second wake-up
    frame = video(1, size=400)
    stream.publish(frame)
    for _ in range(3):
        await asyncio.sleep(0)
    assert ("frame", frame) in publisher.sent
    stream.end("encoder left")
    await asyncio.wait_for(task, 1)
