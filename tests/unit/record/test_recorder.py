"""The recorder on a real bus with real encoded frames: files, reconnects, codec
changes, disk failures, and trimming what a crash left half written."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from server.bus import Stream, StreamGrant
from server.hls.packager import HlsService
from server.media.frame import TIMEBASE, Frame, TrackKind
from server.record.disk import FileSink, Opener, OsFile, open_os_file
from server.record.manifest import left_behind
from server.record.ports import FinishedRecording, RecordingFailure
from server.record.service import RecordService, RecordStats
from server.record.trim import trim_to_whole, whole_length
from server.settings import HlsSettings, RecordSettings
from tests.unit.media.avsource import Media, decode_all, media

SETTINGS = RecordSettings(min_free_bytes=0)
SESSION = "ses_1"


class Catalog:
    def __init__(self) -> None:
        self.finished: list[FinishedRecording] = []
        self.failures: list[RecordingFailure] = []

    async def recording_finished(self, recording: FinishedRecording) -> None:
        self.finished.append(recording)

    def recording_failed(self, failure: RecordingFailure) -> None:
        self.failures.append(failure)


def grant(recording: bool = True, low_latency: bool = True) -> StreamGrant:
    return StreamGrant("st_1", "env_1", True, 2, recording=recording, low_latency=low_latency)


def shifted(frames: Iterable[Frame], ticks: int) -> list[Frame]:
    return [dataclasses.replace(f, dts=f.dts + ticks, pts=f.pts + ticks) for f in frames]


async def publish(stream: Stream, source: Media, frames: Iterable[Frame] | None = None) -> None:
    for config in source.configs:
        stream.set_config(config)
    for n, frame in enumerate(source.frames if frames is None else frames):
        stream.publish(frame)
        if n % 8 == 0:
            await asyncio.sleep(0)


async def record(
    tmp_path: Path,
    body: object,
    settings: RecordSettings = SETTINGS,
    opener: Opener = open_os_file,
    hls: HlsService | None = None,
    low_latency: bool = True,
) -> tuple[RecordService, Catalog, Stream]:
    """Record one session; with ``hls`` the recorder copies that service's segmenter
    (as in the server, HLS hears of the session first)."""
    catalog = Catalog()
    service = RecordService(tmp_path / "rec", settings, catalog, opener)
    if hls is not None:
        service.segmenters = hls.live_segmenter
    stream = Stream("st_1")
    if hls is not None:
        hls.stream_opened(grant(low_latency=low_latency), stream, SESSION)
    service.stream_opened(grant(low_latency=low_latency), stream, SESSION)
    await body(stream)  # type: ignore[operator]
    stream.end("done")
    await service.close()
    if hls is not None:
        await hls.close()
    return service, catalog, stream


def record_kinds(stream: Stream) -> list[str]:
    return [r.kind for r in stream.stats().readers if r.kind == "record"]


WITH_HLS = pytest.mark.parametrize("with_hls", [False, True], ids=["muxing", "copying-hls"])


def hls_for(with_hls: bool) -> HlsService | None:
    return HlsService(HlsSettings()) if with_hls else None


def seconds(pts: list[int], rate: int) -> float:
    return (max(pts) - min(pts)) / rate


@WITH_HLS
async def test_a_reconnect_continues_the_same_file_on_one_timeline(
    tmp_path: Path, with_hls: bool
) -> None:
    source = media(seconds=4)
    readers: list[list[str]] = []

    async def body(stream: Stream) -> None:
        await publish(stream, source)
        stream.mark_discontinuity()
        await publish(stream, source)  # the new encoder starts again at 0
        readers.append(record_kinds(stream))

    _, catalog, _ = await record(tmp_path, body, hls=hls_for(with_hls))
    # copying HLS, the recorder reads no frame of the bus itself
    assert readers == [[] if with_hls else ["record"]]
    [done] = catalog.finished
    assert (done.stream_id, done.session_id, done.environment_id) == ("st_1", "ses_1", "env_1")
    assert len(done.parts) == 1
    got = decode_all(done.parts[0].read_bytes())
    assert got["errors"] == []
    video = sorted(got["pts"]["video"])
    assert len(video) == 2 * len(source.track(TrackKind.VIDEO))
    assert len(set(video)) == len(video)  # the second half follows the first, no overlap
    assert abs(seconds(video, TIMEBASE) - 8) < 0.1
    assert got["decoded"]["audio"] >= 2 * len(source.track(TrackKind.AUDIO)) - 4


async def test_stats_count_running_recordings_and_every_byte_written(tmp_path: Path) -> None:
    source = media(seconds=4)
    running: list[RecordStats] = []

    async def body(stream: Stream) -> None:
        await publish(stream, source)
        running.append(service.stats())

    service = RecordService(tmp_path / "rec", SETTINGS, Catalog())
    stream = Stream("st_1")
    service.stream_opened(grant(), stream, SESSION)
    await body(stream)
    stream.end("done")
    await service.close()
    assert running[0].active == 1
    [directory] = (tmp_path / "rec" / "st_1").iterdir()
    on_disk = sum(f.stat().st_size for f in directory.iterdir())
    assert service.stats() == RecordStats(
        active=0, bytes_written=on_disk, write_errors=0, dropped_frames=0
    )


@WITH_HLS
async def test_a_resolution_change_starts_a_new_part(tmp_path: Path, with_hls: bool) -> None:
    small = media(seconds=2)
    other = dataclasses.replace(small.video, width=640, height=360) if small.video else None

    async def body(stream: Stream) -> None:
        await publish(stream, small)
        assert other is not None
        stream.set_config(other)
        await publish(stream, Media(other, small.audio, small.frames), shifted(small.frames, 0))

    _, catalog, _ = await record(tmp_path, body, hls=hls_for(with_hls))
    [done] = catalog.finished
    assert [p.name for p in done.parts] == ["part-000.mp4", "part-001.mp4"]
    for part in done.parts:
        got = decode_all(part.read_bytes())
        assert got["errors"] == [] and got["decoded"]["video"] > 0
    first = decode_all(done.parts[0].read_bytes())
    assert first["decoded"]["video"] == len(small.track(TrackKind.VIDEO))


async def test_streams_without_recording_are_not_recorded(tmp_path: Path) -> None:
    catalog = Catalog()
    service = RecordService(tmp_path / "rec", SETTINGS, catalog)
    stream = Stream("st_1")
    service.stream_opened(grant(recording=False), stream, SESSION)
    assert stream.readers == ()
    await service.close()


async def test_too_little_free_space_refuses_with_a_warning(tmp_path: Path) -> None:
    catalog = Catalog()
    service = RecordService(tmp_path / "rec", RecordSettings(min_free_bytes=2**50), catalog)
    stream = Stream("st_1")
    service.stream_opened(grant(), stream, SESSION)
    assert stream.readers == ()
    assert "recording.min_free_bytes" in service.warnings("st_1")[0]
    [failure] = catalog.failures
    assert (failure.stream_id, failure.session_id, failure.environment_id) == (
        "st_1",
        SESSION,
        "env_1",
    )
    assert failure.reason == service.warnings("st_1")[0]


class FullDisk:
    """The lowest level: a file that takes ``room`` bytes, then says the disk is full."""

    def __init__(self, path: Path, room: list[int]) -> None:
        self._file = OsFile(path)
        self._room = room

    def write(self, pieces: Sequence[bytes]) -> None:
        data = b"".join(pieces)
        if len(data) > self._room[0]:
            self._file.write([data[: self._room[0]]])
            self._room[0] = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self._room[0] -= len(data)
        self._file.write(pieces)

    def close(self) -> None:
        self._file.close()


async def test_a_full_disk_stops_the_recording_not_hls(tmp_path: Path) -> None:
    source = media(seconds=4)
    room = [60_000]

    def opener(path: Path) -> FileSink:
        return FullDisk(path, room)

    catalog = Catalog()
    service = RecordService(tmp_path / "rec", SETTINGS, catalog, opener=opener)
    hls = HlsService(HlsSettings(target_duration=1.0))
    stream = Stream("st_1")
    service.stream_opened(grant(), stream, SESSION)
    hls.stream_opened(grant(), stream, SESSION)
    [packager] = hls.packagers()
    await publish(stream, source)
    for _ in range(50):
        await asyncio.sleep(0.05)
        if service.recording("st_1") is None:
            break
    assert service.recording("st_1") is None  # stopped, and its files handed over
    [warning] = service.warnings("st_1")
    assert "No space left on device" in warning
    assert catalog.failures == [RecordingFailure("st_1", SESSION, "env_1", warning)]  # once
    segments = packager.segmenter.stats().segments
    await publish(stream, source, shifted(source.frames, 4 * TIMEBASE))
    await asyncio.sleep(0.2)
    assert packager.segmenter.stats().segments >= segments + 3  # HLS went on
    assert packager.dropped_frames == 0
    stream.end("done")
    await service.close()
    await hls.close()
    [done] = catalog.finished
    part = done.parts[0]
    stats = service.stats()
    assert (stats.active, stats.write_errors) == (0, 1) and 0 < stats.bytes_written <= 60_000
    assert whole_length(part) < part.stat().st_size  # a half-written fragment ...
    trim_to_whole(part)  # ... that finishing the recording cuts off
    assert decode_all(part.read_bytes())["errors"] == []


class SlowDisk:
    def __init__(self, path: Path, gate: threading.Event) -> None:
        self._file = OsFile(path)
        self._gate = gate

    def write(self, pieces: Sequence[bytes]) -> None:
        self._gate.wait(5)
        self._file.write(pieces)

    def close(self) -> None:
        self._file.close()


async def test_a_slow_disk_costs_frames_not_the_publisher(tmp_path: Path) -> None:
    source = media(seconds=4)
    gate = threading.Event()
    settings = RecordSettings(min_free_bytes=0, queue_max_bytes=1024 * 1024)
    catalog = Catalog()
    service = RecordService(tmp_path / "rec", settings, catalog, opener=lambda p: SlowDisk(p, gate))
    stream = Stream("st_1")
    service.stream_opened(grant(), stream, SESSION)
    for config in source.configs:
        stream.set_config(config)
    for round_ in range(20):  # ~80 s of media while the disk is stuck
        for frame in shifted(source.frames, round_ * 4 * TIMEBASE):
            stream.publish(frame)
        await asyncio.sleep(0)
    recording = service.recording("st_1")
    assert recording is not None and recording.dropped_frames > 0
    gate.set()
    stream.end("done")
    await service.close()
    assert service.stats().dropped_frames == recording.dropped_frames > 0
    [done] = catalog.finished
    assert decode_all(done.parts[0].read_bytes())["errors"] == []


async def test_a_crash_leaves_a_recording_the_next_start_can_finish(tmp_path: Path) -> None:
    source = media(seconds=4)
    root = tmp_path / "rec"
    catalog = Catalog()
    service = RecordService(root, SETTINGS, catalog)
    stream = Stream("st_1")
    service.stream_opened(grant(), stream, SESSION)
    await publish(stream, source)
    await asyncio.sleep(0.3)
    [found] = left_behind(root)  # what a process killed now would leave
    assert (found.stream_id, found.session_id) == ("st_1", "ses_1")
    part = found.parts[0]
    with part.open("r+b") as f:  # a fragment cut short by the kill
        f.truncate(part.stat().st_size - 100)
    trim_to_whole(part)
    got = decode_all(part.read_bytes())
    assert got["errors"] == [] and got["decoded"]["video"] >= 60
    stream.end("done")
    await service.close()


@WITH_HLS
async def test_a_late_audio_config_does_not_cost_the_first_gop(
    tmp_path: Path, with_hls: bool
) -> None:
    source = media(seconds=4)
    assert source.video is not None and source.audio is not None
    late = 9000  # the first ADTS frame (and so the audio config) comes 0.1 s after video

    async def body(stream: Stream) -> None:
        stream.announce_tracks(frozenset({TrackKind.VIDEO, TrackKind.AUDIO}))
        stream.set_config(source.video)  # type: ignore[arg-type]
        audio_set = False
        for n, frame in enumerate(source.frames):
            if not audio_set and frame.dts >= late:
                stream.set_config(source.audio)  # type: ignore[arg-type]
                audio_set = True
            if frame.track is TrackKind.VIDEO or audio_set:
                stream.publish(frame)
            if n % 8 == 0:
                await asyncio.sleep(0)

    _, catalog, _ = await record(tmp_path, body, hls=hls_for(with_hls))
    [done] = catalog.finished
    assert len(done.parts) == 1
    got = decode_all(done.parts[0].read_bytes())
    assert got["decoded"]["video"] == len(source.track(TrackKind.VIDEO))
    assert got["decoded"]["audio"] > 0


@pytest.mark.parametrize(
    ("hls_settings", "low_latency"),
    [
        (HlsSettings(segment_format="ts"), True),
        (HlsSettings(), False),
        (HlsSettings(target_duration=4.0, part_target=1.5), True),
    ],
    ids=["ts-segments", "no-parts", "long-parts"],
)
async def test_hls_output_a_crash_would_lose_too_much_of_is_not_copied(
    tmp_path: Path, hls_settings: HlsSettings, low_latency: bool
) -> None:
    source = media(seconds=4)
    readers: list[list[str]] = []

    async def body(stream: Stream) -> None:
        await publish(stream, source)
        readers.append(record_kinds(stream))

    hls = HlsService(hls_settings)
    _, catalog, _ = await record(tmp_path, body, hls=hls, low_latency=low_latency)
    assert readers == [["record"]]  # muxes itself, one fragment a second
    [done] = catalog.finished
    got = decode_all(done.parts[0].read_bytes())
    assert got["errors"] == [] and got["decoded"]["video"] > 0


async def test_a_slow_disk_costs_copied_parts_to_the_next_keyframe(tmp_path: Path) -> None:
    source = media(seconds=4)
    gate = threading.Event()
    settings = RecordSettings(min_free_bytes=0, queue_max_bytes=1024 * 1024)
    catalog = Catalog()
    hls = HlsService(HlsSettings())
    service = RecordService(
        tmp_path / "rec", settings, catalog, lambda p: SlowDisk(p, gate), hls.live_segmenter
    )
    stream = Stream("st_1")
    hls.stream_opened(grant(), stream, SESSION)
    service.stream_opened(grant(), stream, SESSION)
    per_round = sum(len(f.payload) for f in source.frames)
    rounds = 2 * settings.queue_max_bytes // per_round + 2  # twice the backlog's bound
    for round_ in range(rounds):  # while the disk is stuck
        await publish(stream, source, shifted(source.frames, round_ * 4 * TIMEBASE))
    recording = service.recording("st_1")
    assert recording is not None and recording.dropped_frames > 0
    assert record_kinds(stream) == []
    gate.set()
    stream.end("done")
    await service.close()
    await hls.close()
    assert service.stats().dropped_frames == recording.dropped_frames > 0
    [done] = catalog.finished
    got = decode_all(done.parts[0].read_bytes())
    assert got["errors"] == [] and 0 < got["decoded"]["video"] < rounds * 120


async def test_a_full_disk_stops_a_copying_recording_not_hls(tmp_path: Path) -> None:
    source = media(seconds=4)
    room = [60_000]
    catalog = Catalog()
    hls = HlsService(HlsSettings(target_duration=1.0))
    service = RecordService(
        tmp_path / "rec", SETTINGS, catalog, lambda p: FullDisk(p, room), hls.live_segmenter
    )
    stream = Stream("st_1")
    hls.stream_opened(grant(), stream, SESSION)
    service.stream_opened(grant(), stream, SESSION)
    [packager] = hls.packagers()
    await publish(stream, source)
    for _ in range(50):
        await asyncio.sleep(0.05)
        if service.recording("st_1") is None:
            break
    assert service.recording("st_1") is None
    assert packager.segmenter.tap is None  # HLS goes on alone
    [warning] = service.warnings("st_1")
    assert catalog.failures == [RecordingFailure("st_1", SESSION, "env_1", warning)]
    segments = packager.segmenter.stats().segments
    await publish(stream, source, shifted(source.frames, 4 * TIMEBASE))
    await asyncio.sleep(0.2)
    assert packager.segmenter.stats().segments >= segments + 3
    stream.end("done")
    await service.close()
    await hls.close()
    [done] = catalog.finished
    trim_to_whole(done.parts[0])
    assert decode_all(done.parts[0].read_bytes())["errors"] == []


async def test_a_crash_loses_at_most_the_part_being_copied(tmp_path: Path) -> None:
    source = media(seconds=4)
    root = tmp_path / "rec"
    hls = HlsService(HlsSettings())
    service = RecordService(root, SETTINGS, Catalog(), segmenters=hls.live_segmenter)
    stream = Stream("st_1")
    hls.stream_opened(grant(), stream, SESSION)
    service.stream_opened(grant(), stream, SESSION)
    await publish(stream, source)
    await asyncio.sleep(0.3)
    [found] = left_behind(root)  # what a process killed now would leave
    part = found.parts[0]
    trim_to_whole(part)
    got = decode_all(part.read_bytes())
    # all but the part still open (parts are at most hls.part_target, 0.5 s, of 30 fps)
    assert got["errors"] == []
    assert got["decoded"]["video"] >= len(source.track(TrackKind.VIDEO)) - 16
    stream.end("done")
    await service.close()
    await hls.close()
