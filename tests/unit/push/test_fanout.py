"""The push fanout core (sans-IO) and its groups: destinations of one stream share one
bus reader and every message's bytes, and still keep their own bound and fate."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from server.bus import Stream
from server.media.frame import Frame, TrackKind
from server.protocols.rtmp.chunk import ChunkReader, Message
from server.push.fanout import WRITE_SLICE, Member, PushFanout
from server.push.groups import PushGroups
from server.push.ports import PushStalled, SharedSink
from server.push.rtmp_client import RtmpClientError
from server.settings import PushSettings
from tests.unit.bus.helpers import VIDEO_CONFIG_2, audio, video
from tests.unit.push.fakes import decode, live_stream, publish_gop, until

SETTINGS = PushSettings(stall_timeout=1.0, queue_max_frames=128, batch_interval=0.005)


class Sink:
    """A SharedSink that keeps every write as it came."""

    def __init__(self, chunk_size: int = 4096, stream_id: int = 1) -> None:
        self.chunk_size = chunk_size
        self.stream_id = stream_id
        self.writable = True
        self.error: Exception | None = None
        self.metadata: list[Mapping[str, float | str | bool]] = []
        self.writes: list[bytes] = []

    def send_metadata(self, metadata: Mapping[str, float | str | bool]) -> None:
        self.metadata.append(metadata)

    def send_shared(self, wire: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.writes.append(wire)

    def messages(self) -> list[Message]:
        reader = ChunkReader(
            max_message_size=16 << 20,
            max_chunk_size=1 << 20,
            max_chunk_streams=64,
            max_partial_bytes=64 << 20,
        )
        reader.chunk_size = self.chunk_size
        out: list[Message] = []
        reader.feed(b"".join(self.writes), out)
        assert reader.buffered == 0
        return out

    def frames(self) -> list[tuple[str, object]]:
        return [decode(m) for m in self.messages()]


class Lost(Sink):
    """A connection that failed before the fanout got to it: every send raises."""

    def __init__(self) -> None:
        super().__init__()
        self.error = RtmpClientError("connection lost")

    def send_metadata(self, metadata: Mapping[str, float | str | bool]) -> None:
        assert self.error is not None
        raise self.error


class Ends:
    def __init__(self) -> None:
        self.seen: list[tuple[Sink, Exception | None]] = []

    def member(self, sink: Sink) -> Member:
        return Member(sink, lambda error: self.seen.append((sink, error)), None)


def fanout(stream: Stream, max_items: int = 128, max_bytes: int = 8 << 20) -> PushFanout:
    reader = stream.reader("push:test", "push", max_frames=1024, max_bytes=64 << 20)
    return PushFanout(reader, 4096, 1, stall=1.0, max_items=max_items, max_bytes=max_bytes)


def test_the_same_bytes_go_to_every_destination_in_one_write_per_tick() -> None:
    stream = live_stream()
    publish_gop(stream, 0, 10)
    group, ends = fanout(stream), Ends()
    sinks = [Sink() for _ in range(3)]
    for sink in sinks:
        group.add(ends.member(sink))
    group.tick(0.0)
    publish_gop(stream, 10, 5)
    group.tick(0.04)
    for sink in sinks:
        assert len(sink.writes) == 2 and len(sink.metadata) == 1
        assert sink.writes[1] is sinks[0].writes[1]  # chunked and joined once, for all
    kinds = [kind for kind, _ in sinks[0].frames()]
    assert kinds == ["config", "config"] + ["frame"] * 30
    first = sinks[0].messages()[2]
    assert first.timestamp == 0 and first.type_id == 9  # the keyframe, rebased to zero
    assert len(stream.readers) == 1 and not ends.seen


def test_a_joiner_in_the_first_gop_gets_it_all_from_timestamp_zero() -> None:
    stream = live_stream()
    publish_gop(stream, 0, 10)
    group, ends = fanout(stream), Ends()
    early, late = Sink(), Sink()
    group.add(ends.member(early))
    group.tick(0.0)
    publish_gop(stream, 10, 5)
    group.tick(0.04)
    assert group.joinable  # still the first GOP: a reader of its own would start there
    group.add(ends.member(late))
    publish_gop(stream, 15, 5)
    group.tick(0.08)
    assert late.frames() == early.frames()
    publish_gop(stream, 20, 5)
    group.tick(0.1)
    assert late.writes[-1] is early.writes[-1]  # from then on, the shared bytes
    publish_gop(stream, 30, 1)  # the next keyframe: a joiner now needs its own base
    group.tick(0.12)
    assert not group.joinable


def test_a_full_destination_holds_then_drops_to_the_next_keyframe_alone() -> None:
    stream = live_stream()
    group, ends = fanout(stream, max_items=100), Ends()
    full, fine = Sink(), Sink()
    group.add(ends.member(full))
    group.add(ends.member(fine))
    publish_gop(stream, 0, 20)
    group.tick(0.0)
    full.writable = False
    publish_gop(stream, 20, 10)  # 20 messages: held (bound: 100)
    group.tick(0.04)
    assert len(full.writes) == 1 and group.members[0].backlog
    for gop in range(1, 4):  # past the bound: dropped, resumes at a keyframe
        publish_gop(stream, gop * 30, 30)
        group.tick(0.04 + gop * 0.04)
    full.writable = True
    publish_gop(stream, 120, 30)
    group.tick(0.5)
    frames = [f for kind, f in full.frames() if kind == "frame"]
    kinds = [kind for kind, _ in full.frames()]
    resumed = kinds.index("config", 2)
    assert kinds[resumed : resumed + 2] == ["config", "config"]  # configs before the keyframe
    after = full.frames()[resumed + 2][1]
    assert isinstance(after, Frame) and after.keyframe and after.track is TrackKind.VIDEO
    member = next(m for m in group.members if m.sink is full)
    assert member.dropped == 300 - len(frames) > 0
    assert len([f for kind, f in fine.frames() if kind == "frame"]) == 300
    assert stream.readers[0].dropped_frames == member.dropped  # the bus metrics see it
    assert group.upstream_dropped == 0 and not ends.seen


def test_big_batches_go_out_in_slices_while_the_transport_has_room() -> None:
    stream = live_stream()
    for n in range(40):
        stream.publish(video(n, key=n == 0, size=40_000))
    group, ends = fanout(stream), Ends()
    sink = Sink()
    group.add(ends.member(sink))
    group.tick(0.0)
    assert len(sink.writes) > 1 and all(len(w) <= WRITE_SLICE for w in sink.writes)
    assert len(sink.frames()) == 42  # both configs and 40 frames
    sink.writable = False
    stream.publish(video(40, size=40_000))
    group.tick(0.04)
    assert len(sink.frames()) == 42  # held while full


def test_a_destination_that_cannot_write_for_the_stall_time_ends_alone() -> None:
    stream = live_stream()
    publish_gop(stream, 0, 2)
    group, ends = fanout(stream), Ends()
    stuck, fine = Sink(), Sink()
    group.add(ends.member(stuck))
    group.add(ends.member(fine))
    group.tick(0.0)
    stuck.writable = False
    group.tick(0.1)
    group.tick(1.05)
    assert ends.seen == []
    group.tick(1.2)
    assert [sink for sink, _ in ends.seen] == [stuck]
    error = ends.seen[0][1]
    assert isinstance(error, PushStalled) and str(error) == "destination stopped reading for 1 s"
    assert [m.sink for m in group.members] == [fine]


def test_a_failed_connection_ends_only_its_destination() -> None:
    stream = live_stream()
    group, ends = fanout(stream), Ends()
    broken, fine = Sink(), Sink()
    group.add(ends.member(broken))
    group.add(ends.member(fine))
    publish_gop(stream, 0, 2)
    group.tick(0.0)
    broken.error = RtmpClientError("connection lost")
    publish_gop(stream, 2, 2)
    group.tick(0.04)
    assert ends.seen == [(broken, broken.error)]
    assert len(fine.writes) == 2


def test_at_the_end_a_backlog_goes_out_before_the_destination_is_let_go() -> None:
    stream = live_stream()
    group, ends = fanout(stream), Ends()
    slow, fine = Sink(), Sink()
    group.add(ends.member(slow))
    group.add(ends.member(fine))
    publish_gop(stream, 0, 5)
    slow.writable = False
    stream.end("session over")
    assert not group.tick(0.0)
    assert ends.seen == [(fine, None)]
    slow.writable = True
    assert group.tick(0.04)
    assert ends.seen == [(fine, None), (slow, None)]
    assert slow.frames() == fine.frames()


def test_configs_that_change_mid_stream_are_shared_messages() -> None:
    stream = live_stream()
    group, ends = fanout(stream), Ends()
    sink = Sink()
    group.add(ends.member(sink))
    publish_gop(stream, 0, 3)
    stream.set_config(VIDEO_CONFIG_2)
    stream.publish(video(3, key=True, size=400))
    stream.publish(audio(3))
    group.tick(0.0)
    sent = sink.frames()
    assert ("config", VIDEO_CONFIG_2) in sent
    assert sent.index(("config", VIDEO_CONFIG_2)) == 2 + 6  # after the first 6 frames


async def test_destinations_of_one_stream_share_a_fanout_unless_they_differ() -> None:
    stream = live_stream()
    publish_gop(stream, 0, 10)
    groups = PushGroups(SETTINGS)
    a, b, other_chunks = Sink(), Sink(), Sink(chunk_size=128)
    joined = [groups.join(stream, sink, f"push:{n}") for n, sink in enumerate((a, b, other_chunks))]
    assert isinstance(a, SharedSink)
    assert joined[0].fanout is joined[1].fanout is not joined[2].fanout
    assert len(stream.readers) == 2
    await until(lambda: bool(a.writes) and bool(other_chunks.writes))
    assert a.frames() == b.frames() == other_chunks.frames()
    publish_gop(stream, 30, 30)  # a new keyframe: a destination joining now starts afresh
    await until(lambda: not joined[0].fanout.joinable)
    late = Sink()
    joined.append(groups.join(stream, late, "push:late"))
    assert joined[3].fanout is not joined[0].fanout and len(stream.readers) == 3
    await until(lambda: len(late.frames()) == 62)
    first = late.messages()[2]
    assert first.timestamp == 0  # its own timeline: from its first keyframe
    stream.end("session over")
    for membership in joined:
        await asyncio.wait_for(membership.wait(), 1)
        membership.leave()
    await until(lambda: not stream.readers)
    await groups.close()


async def test_a_leaving_destination_stops_its_fanout_once_it_is_the_last() -> None:
    stream = live_stream()
    groups = PushGroups(SETTINGS)
    sink = Sink()
    membership = groups.join(stream, sink, "push:1")
    publish_gop(stream, 0, 2)
    await until(lambda: bool(sink.writes))
    membership.leave()
    await until(lambda: not stream.readers)
    assert membership.dropped_frames == 0
    await groups.close()


def test_a_joiner_whose_connection_failed_meanwhile_ends_alone() -> None:
    stream = live_stream()
    publish_gop(stream, 0, 5)
    group, ends = fanout(stream), Ends()
    fine = Sink()
    group.add(ends.member(fine))
    group.tick(0.0)
    broken = Lost()
    group.add(ends.member(broken))
    publish_gop(stream, 5, 1)
    group.tick(0.04)
    assert ends.seen == [(broken, broken.error)] and broken.error is not None
    assert len(fine.writes) == 2 and [m.sink for m in group.members] == [fine]
