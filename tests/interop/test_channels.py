"""A channel played out for real: library items conformed into one continuous live
stream, read back over HLS with PyAV."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.interop.channel_helpers import (
    FRAME,
    PROFILE,
    make_channel,
    make_item,
    now_playing,
    server_log_on_failure,
    three_items,
    upload,
    watch,
)
from tests.interop.conftest import Api, Peers, StartRelaycast, ffmpeg_publish, wait_for
from tests.interop.test_multistream import (
    Destinations,
    codecs,
    free_port,
    probe,
    start_nginx,
)
from tests.webhook_receiver import Receiver

pytestmark = [pytest.mark.interop, pytest.mark.serial]


def test_three_different_items_play_in_order_as_one_continuous_stream(
    start_relaycast: StartRelaycast, tmp_path: Path
) -> None:
    relaycast = start_relaycast()
    api = relaycast.api
    media = [upload(api, path) for path in three_items(tmp_path)]
    stream = make_channel(api, media, loop=True)
    stream_id = stream["streamId"]
    assert api.state(stream_id) == "idle"
    api.ok("POST", f"/v1/live-streams/{stream_id}/start")
    api.wait_state(stream_id, "live", timeout=20)
    order: list[str] = []

    def on_air() -> list[str]:
        playing = now_playing(api, stream_id)
        if playing and (not order or order[-1] != playing["mediaId"]):
            order.append(playing["mediaId"])
        return order

    with ThreadPoolExecutor(1) as pool:
        viewer = pool.submit(watch, stream["playback"]["hlsUrl"], 10.5)
        wait_for(on_air, lambda seen: len(seen) >= 4, 20, "the queue to loop")
        watched = viewer.result(60)
    assert order[:4] == [*media, media[0]], relaycast.log()[-3000:]
    assert watched.sizes == {(PROFILE["width"], PROFILE["height"])}
    gaps = watched.video_gaps()
    assert gaps and min(gaps) > 0, "video PTS must increase"
    assert max(gaps) <= FRAME + 0.002, f"largest video gap {max(gaps):.3f}s"
    audio_gaps = watched.audio_gaps()
    assert min(audio_gaps) > 0 and max(audio_gaps) <= 0.03, (min(audio_gaps), max(audio_gaps))
    assert abs(watched.audio[-1] - watched.video[-1]) < 0.5
    ingest = api.wait_media(stream_id, timeout=15)["ingest"]
    assert ingest["protocol"] == "playout" and ingest["video"]["width"] == PROFILE["width"]
    api.ok("POST", f"/v1/live-streams/{stream_id}/stop")
    api.wait_state(stream_id, "ended", timeout=10)  # the session is over, as for an encoder
    assert now_playing(api, stream_id) is None
    api.ok("POST", f"/v1/live-streams/{stream_id}/start")  # again: a new session, from the top
    again = wait_for(
        lambda: now_playing(api, stream_id), lambda p: p is not None, 15, "playing again"
    )
    assert again is not None and again["mediaId"] == media[0] and again["positionSeconds"] < 2
    api.wait_state(stream_id, "live", timeout=10)
    assert api.sessions(stream_id)["total"] == 2
    api.ok("POST", f"/v1/live-streams/{stream_id}/stop")


def test_an_encoder_takes_over_and_the_queue_resumes_where_it_stopped(
    start_relaycast: StartRelaycast, tmp_path: Path, peers: Peers
) -> None:
    relaycast = start_relaycast()
    api = relaycast.api
    long_item = upload(api, make_item(tmp_path / "long.mp4", "640x360", 30, 30, "48000:stereo"))
    stream = make_channel(api, [long_item], loop=True)
    stream_id = stream["streamId"]
    api.ok("POST", f"/v1/live-streams/{stream_id}/start")
    api.wait_state(stream_id, "live", timeout=20)
    before = wait_for(
        lambda: now_playing(api, stream_id),
        lambda playing: playing is not None and playing["positionSeconds"] >= 3,
        20,
        "three seconds of the item on air",
    )
    assert before is not None
    encoder = peers.start("ffmpeg", ffmpeg_publish(relaycast.publish_url(stream), 6, fps=30))
    wait_for(
        lambda: api.health(stream_id)["ingest"],
        lambda ingest: (ingest.get("video") or {}).get("width") == 640,
        15,
        "the encoder's picture on the stream",
    )
    assert now_playing(api, stream_id) is None, "nothing of the queue is on air meanwhile"
    assert encoder.wait(30) == 0, encoder.output()
    after = wait_for(
        lambda: now_playing(api, stream_id),
        lambda playing: playing is not None,
        15,
        "the queue back on air",
    )
    assert after is not None and after["itemId"] == before["itemId"]
    assert before["positionSeconds"] <= after["positionSeconds"] <= before["positionSeconds"] + 4
    assert api.state(stream_id) == "live"
    assert api.sessions(stream_id)["total"] == 1, "one session across the takeover"
    media = stream["playback"]["hlsUrl"].replace("master.m3u8", "media.m3u8")
    playlist = wait_for(
        lambda: _text(media), lambda t: t.count("#EXT-X-DISCONTINUITY\n") >= 2, 15, "two cuts"
    )
    assert "#EXT-X-ENDLIST" not in playlist
    assert "taken over by an encoder" in relaycast.log() or "takes over" in relaycast.log()


def _text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return str(resp.read().decode())


LOCAL_HOOKS = {"RELAYCAST_WEBHOOKS__ALLOW_PRIVATE_TARGETS": "true"}


def test_queue_edits_during_playout_and_a_broken_item(
    start_relaycast: StartRelaycast, tmp_path: Path
) -> None:
    """Skip, a broken file, a reorder, removing the item on air, and the end of the
    queue, each seen in ``nowPlaying``, the webhooks, the log and the metrics."""
    relaycast = start_relaycast(env=LOCAL_HOOKS)
    api = relaycast.api
    a, broken, b, c = (
        upload(api, make_item(tmp_path / f"{name}.mp4", "320x180", 25, 4, "48000:stereo"))
        for name in "abcd"
    )
    [path] = (relaycast.data_dir / "media").glob(f"*/{broken}*")
    path.write_bytes(b"not a video any more" * 100)  # unreadable from now on
    with Receiver() as receiver, server_log_on_failure(relaycast):
        api.ok(
            "POST",
            "/v1/webhooks",
            {"url": receiver.url, "events": ["channel.item.started", "channel.item.failed"]},
            201,
        )
        stream = make_channel(api, [a, broken, b, c], loop=False)
        sid = stream["streamId"]
        base = f"/v1/live-streams/{sid}/queue"
        items = {i["mediaId"]: i["itemId"] for i in api.ok("GET", base)["items"]}
        api.ok("POST", f"/v1/live-streams/{sid}/start")
        on_air = _wait_on_air(api, sid, items[a])
        assert on_air["positionSeconds"] < 4
        api.ok("POST", f"{base}/skip", status=204)  # a → (broken, skipped) → b
        _wait_on_air(api, sid, items[b])
        metrics = _text(f"{relaycast.server.base}/metrics")
        for name, value in (("items_failed", 1), ("skips", 1), ("items_started", 2)):
            assert f'relaycast_channel_{name}_total{{stream_id="{sid}"}} {value}.0' in metrics
        again = api.ok("POST", base, {"mediaId": a}, 201)  # appended after c ...
        api.ok("PATCH", f"{base}/{again['itemId']}", {"position": again["position"] - 1})
        _wait_on_air(api, sid, again["itemId"], timeout=10)  # ... moved before c: plays next
        api.ok("DELETE", f"{base}/{again['itemId']}", status=204)  # on air: c at once
        _wait_on_air(api, sid, items[c], timeout=3)
        api.wait_state(sid, "ended", timeout=15)  # the queue is over: so is the session
        hooks = wait_for(receiver.received, lambda r: len(r) >= 5, 10, "the item webhooks")
    events = [(r.json["type"], r.json["data"]["itemId"]) for r in hooks]
    assert events == [
        ("channel.item.started", items[a]),
        ("channel.item.failed", items[broken]),
        ("channel.item.started", items[b]),
        ("channel.item.started", again["itemId"]),
        ("channel.item.started", items[c]),
    ]
    failed = hooks[1].json["data"]
    assert failed["mediaId"] == broken and failed["streamId"] == sid and failed["error"]
    assert f"item {items[broken]} (media {broken}) skipped" in relaycast.log()


def _wait_on_air(api: Api, stream_id: str, item_id: str, timeout: float = 15) -> dict[str, Any]:
    playing = wait_for(
        lambda: now_playing(api, stream_id),
        lambda p: p is not None and p["itemId"] == item_id,
        timeout,
        f"item {item_id} on air",
        every=0.05,
    )
    assert playing is not None
    return playing


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.add(int(stat.parent.name))
    return found


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "term"])
def test_a_restart_mid_item_resumes_within_5_s_of_the_position(
    start_relaycast: StartRelaycast, tmp_path: Path, sig: signal.Signals
) -> None:
    first = start_relaycast()
    api = first.api
    long_item = upload(api, make_item(tmp_path / "long.mp4", "320x180", 25, 40, "48000:stereo"))
    stream = make_channel(api, [long_item], loop=True)
    sid = stream["streamId"]
    api.ok("POST", f"/v1/live-streams/{sid}/start")
    with server_log_on_failure(first):
        wait_for(
            lambda: now_playing(api, sid),
            lambda playing: playing is not None and playing["positionSeconds"] >= 7,
            30,
            "seven seconds of the item on air",
        )
    workers = _children(first.server.proc.pid)
    assert workers, "playout runs in a worker process"
    before = now_playing(api, sid)
    assert before is not None
    first.server.stop(sig)
    killed = time.monotonic()
    wait_for(
        lambda: {pid for pid in workers if Path(f"/proc/{pid}").exists()},
        lambda left: not left,
        10,
        "the orphaned worker to exit",
    )
    second = start_relaycast(key=api.key)
    with server_log_on_failure(second):
        after = wait_for(
            lambda: now_playing(second.api, sid),
            lambda playing: playing is not None,
            20,
            "the channel back on air after the restart",
        )
    assert after is not None and after["itemId"] == before["itemId"]
    # the first look after the restart: where it resumed (the save before the kill)
    assert abs(after["positionSeconds"] - before["positionSeconds"]) <= 5, (before, after)
    assert time.monotonic() - killed < 30
    assert "resumed 1 channel(s)" in second.log()
    second.api.wait_state(sid, "live", timeout=10)


def test_an_rtmp_destination_sees_one_publish_across_items_a_loop_and_a_takeover(
    start_relaycast: StartRelaycast, tmp_path: Path, peers: Peers
) -> None:
    relaycast = start_relaycast()
    api = relaycast.api
    media = [upload(api, path) for path in three_items(tmp_path, seconds=2.5)]
    port = free_port()
    prefix = tmp_path / "nginx"
    start_nginx(peers, prefix, [port], ["live"])
    stream = make_channel(api, media, loop=True)
    sid = stream["streamId"]
    dests = Destinations(relaycast, sid)
    dest = dests.create(f"rtmp://127.0.0.1:{port}/live", "channelkey")["destinationId"]
    api.ok("POST", f"/v1/live-streams/{sid}/start")
    with server_log_on_failure(relaycast):
        dests.wait([dest], "active", 20)
        loops = wait_for(
            lambda: now_playing(api, sid),
            lambda playing: playing is not None and playing["mediaId"] == media[1],
            20,
            "the second item",
        )
        assert loops is not None
        wait_for(
            lambda: now_playing(api, sid),
            lambda playing: playing is not None and playing["mediaId"] == media[0],
            20,
            "the loop back to the first item",
        )
        pulled = probe(f"rtmp://127.0.0.1:{port}/live/channelkey")
        assert {"h264", "aac"} <= codecs(pulled)
        # an encoder takes over for a few seconds, then the queue again
        encoder = peers.start("ffmpeg", ffmpeg_publish(relaycast.publish_url(stream), 4))
        wait_for(lambda: now_playing(api, sid), lambda p: p is None, 10, "the takeover")
        assert encoder.wait(30) == 0, encoder.output()
        wait_for(lambda: now_playing(api, sid), bool, 15, "the queue back on air")
        sent = dests.get(dest)["status"]["bytesSent"]
        wait_for(lambda: dests.get(dest)["status"]["bytesSent"], lambda b: b > sent, 10, "bytes")
    status = dests.get(dest)["status"]
    assert status["state"] == "active" and status["reconnects"] == 0, status
    publishes = (prefix / "error.log").read_text().count("publish: name='channelkey'")
    assert publishes == 1, "nginx-rtmp saw one publish across items, a loop and a takeover"


def test_a_short_schedule_goes_live_at_its_start_and_ends_at_its_end(
    start_relaycast: StartRelaycast, tmp_path: Path
) -> None:
    relaycast = start_relaycast()
    api = relaycast.api
    media = upload(api, make_item(tmp_path / "a.mp4", "320x180", 25, 3, "48000:stereo"))
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6)
    end = start + timedelta(seconds=8)
    stream = make_channel(
        api, [media], loop=True, scheduledStart=start.isoformat(), scheduledEnd=end.isoformat()
    )
    sid = stream["streamId"]
    assert api.state(sid) == "idle"
    with server_log_on_failure(relaycast):
        api.wait_state(sid, "live", timeout=20)
        went_live = datetime.now(UTC)
        assert start <= went_live <= start + timedelta(seconds=4), (start, went_live)
        assert api.state(sid) == "live" and datetime.now(UTC) < end
        api.wait_state(sid, "ended", timeout=15)
        ended = datetime.now(UTC)
    assert end <= ended <= end + timedelta(seconds=4), (end, ended)
    assert "(schedule)" in relaycast.log()


def test_the_readme_channel_walkthrough_runs_as_written(
    start_relaycast: StartRelaycast, tmp_path: Path
) -> None:
    relaycast = start_relaycast()
    make_item(tmp_path / "intro.mp4", "640x360", 30, 3, "48000:stereo")
    make_item(tmp_path / "show.mp4", "1280x720", 25, 3, "44100:mono")
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("<!-- curl-channel -->", 2)[1]
    script = f"cd {tmp_path}\n" + block.split("```bash", 1)[1].split("```", 1)[0]
    env = {"RELAYCAST": relaycast.server.base, "KEY": relaycast.api.key, "PATH": "/usr/bin:/bin"}
    with server_log_on_failure(relaycast):
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            capture_output=True,
            text=True,
            env=env,
            timeout=90,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"nowPlaying":{"itemId":"qi_' in done.stdout, done.stdout
    assert "h264,640,360" in done.stdout and "aac" in done.stdout, done.stdout
    [stream] = relaycast.api.ok("GET", "/v1/live-streams")["streams"]
    assert stream["source"] == "queue" and stream["state"] == "ended"
    assert not (tmp_path / "channel.json").exists()


def test_a_dead_worker_fails_its_item_and_a_new_one_goes_on_in_the_same_session(
    start_relaycast: StartRelaycast, tmp_path: Path
) -> None:
    """FFmpeg crashing on a file takes the worker process down: simulated with SIGKILL."""
    relaycast = start_relaycast()
    api = relaycast.api
    first, second = (
        upload(api, make_item(tmp_path / f"{n}.mp4", "320x180", 25, 20, "48000:stereo"))
        for n in "ab"
    )
    stream = make_channel(api, [first, second], loop=False)
    sid = stream["streamId"]
    api.ok("POST", f"/v1/live-streams/{sid}/start")
    with server_log_on_failure(relaycast):
        wait_for(
            lambda: now_playing(api, sid),
            lambda p: p is not None and p["positionSeconds"] >= 2,
            20,
            "the first item on air",
        )
        [worker] = [
            pid
            for pid in _children(relaycast.server.proc.pid)
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        os.kill(worker, signal.SIGKILL)
        playing = wait_for(
            lambda: now_playing(api, sid),
            lambda p: p is not None and p["mediaId"] == second,
            15,
            "the second item on air",
        )
    assert playing is not None
    assert "playout worker died; starting a new one" in relaycast.log()
    assert f"(media {first}) skipped" in relaycast.log()
    assert api.state(sid) == "live" and api.sessions(sid)["total"] == 1


def test_a_forced_key_rotation_does_not_stop_the_channel(
    start_relaycast: StartRelaycast, tmp_path: Path
) -> None:
    """Forcing a new key disconnects the publisher: for a channel that is its own
    playout, which must come straight back (it waited for an encoder that never came)."""
    relaycast = start_relaycast()
    api = relaycast.api
    media = upload(api, make_item(tmp_path / "a.mp4", "320x180", 25, 10, "48000:stereo"))
    stream = make_channel(api, [media], loop=True)
    sid = stream["streamId"]
    api.ok("POST", f"/v1/live-streams/{sid}/start")
    with server_log_on_failure(relaycast):
        before = wait_for(
            lambda: now_playing(api, sid), lambda p: p is not None, 20, "the item on air"
        )
        assert before is not None
        api.ok("POST", f"/v1/live-streams/{sid}/rotate-key?force=true")
        time.sleep(0.5)
        after = wait_for(
            lambda: now_playing(api, sid), lambda p: p is not None, 10, "the item back on air"
        )
    assert after is not None and after["itemId"] == before["itemId"]
    assert api.state(sid) == "live" and api.sessions(sid)["total"] == 1


def test_a_recorded_channel_becomes_a_media_item(
    start_relaycast: StartRelaycast, tmp_path: Path
) -> None:
    relaycast = start_relaycast(env={"RELAYCAST_RECORDING__MIN_FREE_BYTES": "0"})
    api = relaycast.api
    media = upload(api, make_item(tmp_path / "a.mp4", "320x180", 25, 3, "48000:stereo"))
    stream = make_channel(api, [media], loop=True, recording=True)
    sid = stream["streamId"]
    api.ok("POST", f"/v1/live-streams/{sid}/start")
    with server_log_on_failure(relaycast):
        wait_for(
            lambda: now_playing(api, sid),
            lambda p: p is not None and p["positionSeconds"] >= 1,
            20,
            "a few seconds on air",
        )
        time.sleep(4)
        api.ok("POST", f"/v1/live-streams/{sid}/stop")
        recorded = wait_for(
            lambda: [
                m
                for m in api.ok("GET", "/v1/media?limit=100")["media"]
                if m["source"] == "recording"
            ],
            lambda items: bool(items) and items[0]["status"] == "ready",
            40,
            "the recording to be ready",
            every=0.5,
        )
    item = recorded[0]
    assert item["video"]["width"] == PROFILE["width"] and item["audio"]["sampleRate"] == 48000
    assert item["durationSeconds"] >= 4


def _media(api: Api) -> list[dict[str, Any]]:
    return list(api.ok("GET", "/v1/media?limit=100")["media"])


def test_items_that_are_the_profile_are_remuxed_between_conformed_ones(
    start_relaycast: StartRelaycast, tmp_path: Path, peers: Peers
) -> None:
    """Remuxed, conformed, remuxed, and a loop: one HLS timeline at one size, and one
    unbroken publish to an nginx-rtmp destination across the codec config changes."""
    relaycast = start_relaycast()
    api = relaycast.api
    size, fps = f"{PROFILE['width']}x{PROFILE['height']}", int(PROFILE["fps"])
    items = [
        make_item(tmp_path / "same1.mp4", size, fps, 2.5, "48000:stereo"),
        make_item(tmp_path / "other.mp4", "400x300", 24, 2.5, "44100:mono"),
        make_item(tmp_path / "same2.mp4", size, fps, 2.5, "48000:stereo"),
    ]
    media = [upload(api, path) for path in items]
    port = free_port()
    prefix = tmp_path / "nginx"
    start_nginx(peers, prefix, [port], ["live"])
    stream = make_channel(api, media, loop=True)
    sid = stream["streamId"]
    dests = Destinations(relaycast, sid)
    dest = dests.create(f"rtmp://127.0.0.1:{port}/live", "remuxkey")["destinationId"]
    api.ok("POST", f"/v1/live-streams/{sid}/start")
    with server_log_on_failure(relaycast):
        api.wait_state(sid, "live", timeout=20)
        watched = watch(stream["playback"]["hlsUrl"], 9.0)
        pulled = probe(f"rtmp://127.0.0.1:{port}/live/remuxkey")
        assert {"h264", "aac"} <= codecs(pulled)
    log = relaycast.log()
    assert log.count(", remuxed") >= 2 and f"(media {media[1]}) at 0.0s\n" in log
    assert watched.sizes == {(PROFILE["width"], PROFILE["height"])}
    gaps = watched.video_gaps()
    assert min(gaps) > 0 and max(gaps) <= FRAME + 0.002, (min(gaps), max(gaps))
    audio_gaps = watched.audio_gaps()
    assert min(audio_gaps) > 0 and max(audio_gaps) <= 0.03, (min(audio_gaps), max(audio_gaps))
    status = dests.get(dest)["status"]
    assert status["state"] == "active" and status["reconnects"] == 0, status
    assert (prefix / "error.log").read_text().count("publish: name='remuxkey'") == 1
