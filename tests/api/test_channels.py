"""Channels over the API: create fields, the queue (paged, add, reorder, remove, skip),
409s for media that is not ready or queued on a live channel, problem JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from control_api.credentials import new_id
from control_api.store.directory import StoreDirectory
from control_api.store.environments import DEFAULT_ENVIRONMENT
from control_api.store.models import Media
from control_api.store.uploads import media_path
from tests.api.conftest import Api


async def add_media(api: Api, status: str = "ready", env: str = DEFAULT_ENVIRONMENT) -> str:
    environment, _ = await api.store.environments.ensure(env)
    media_id = new_id("med")
    await api.store.media.add(
        Media(
            id=media_id,
            environment_id=environment.id,
            name=f"clip {media_id[-4:]}",
            status=status,
            source="upload",
            filename="clip.mp4",
            path=media_path(environment.id, media_id),
            size_bytes=1,
            duration_seconds=2.0,
            created_at=datetime.now(UTC),
            tags=[],
        )
    )
    return media_id


async def channel(api: Api, **fields: Any) -> dict[str, Any]:
    return await api.new_stream(source="queue", **fields)


async def queue(api: Api, stream_id: str, query: str = "") -> dict[str, Any]:
    reply = await api.call("GET", f"/v1/live-streams/{stream_id}/queue{query}")
    assert reply.status == 200, reply.text
    return dict(reply.json)


async def enqueue(api: Api, stream_id: str, media_id: str, **fields: Any) -> dict[str, Any]:
    reply = await api.call(
        "POST", f"/v1/live-streams/{stream_id}/queue", body={"mediaId": media_id, **fields}
    )
    assert reply.status == 201, reply.text
    return dict(reply.json)


def order(listing: dict[str, Any]) -> list[str]:
    return [item["mediaId"] for item in listing["items"]]


async def test_channel_create_fills_the_profile_from_configuration(api: Api) -> None:
    created = await channel(api, loop=True, profile={"width": 640, "height": 360})
    assert created["source"] == "queue" and created["loop"] is True
    assert created["profile"] == {
        "width": 640,
        "height": 360,
        "fps": 30,
        "videoBitrate": 3_000_000,
        "audioBitrate": 128_000,
    }
    assert created["scheduleRepeat"] == "none"
    plain = await api.new_stream()
    assert "profile" not in plain and "loop" not in plain
    got = (await api.call("GET", f"/v1/live-streams/{created['streamId']}")).json
    assert got["profile"]["width"] == 640


async def test_channel_schedule_is_checked_as_a_whole(api: Api) -> None:
    ok = await channel(
        api,
        scheduledStart="2026-12-07T22:00:00Z",
        scheduledEnd="2026-12-08T01:00:00Z",
        scheduleRepeat="daily",
    )
    assert ok["scheduledStart"] == "2026-12-07T22:00:00Z"
    for body, field in [
        ({"scheduleRepeat": "daily", "scheduledStart": "2026-12-07T22:00:00Z"}, "scheduleRepeat"),
        (
            {"scheduledStart": "2026-12-07T22:00:00Z", "scheduledEnd": "2026-12-07T21:00:00Z"},
            "scheduledEnd",
        ),
        ({"scheduledStart": "tomorrow"}, "scheduledStart"),
        ({"scheduledStart": "2026-12-07T22:00:00"}, "scheduledStart"),  # no offset
        ({"profile": {"width": 641}}, "profile"),
        ({"profile": {"fps": 0}}, "profile"),
    ]:
        reply = await api.call(
            "POST", "/v1/live-streams", body={"name": "c", "source": "queue", **body}
        )
        assert reply.status == 422, (body, reply.text)
        assert reply.headers["Content-Type"].startswith("application/problem+json")
        assert field in reply.text
    encoder = await api.call("POST", "/v1/live-streams", body={"name": "e", "loop": True})
    assert encoder.status == 422 and "loop" in encoder.text
    patched = await api.call(
        "PATCH", f"/v1/live-streams/{ok['streamId']}", body={"scheduleRepeat": "weekly"}
    )
    assert patched.status == 200 and patched.json["scheduleRepeat"] == "weekly"
    bad = await api.call(
        "PATCH",
        f"/v1/live-streams/{ok['streamId']}",
        body={"scheduledEnd": "2026-12-07T21:00:00Z"},
    )
    assert bad.status == 422


async def test_queue_add_at_positions_reorder_and_remove(api: Api) -> None:
    stream = await channel(api)
    sid = stream["streamId"]
    a, b, c, d = [await add_media(api) for _ in range(4)]
    first = await enqueue(api, sid, a)
    assert first["position"] == 0 and first["itemId"].startswith("qi_")
    assert first["durationSeconds"] == 2.0 and first["name"].startswith("clip")
    await enqueue(api, sid, b)
    await enqueue(api, sid, c, position=0)
    await enqueue(api, sid, d, position=99)  # past the end: appended
    listing = await queue(api, sid)
    assert order(listing) == [c, a, b, d]
    assert [i["position"] for i in listing["items"]] == [0, 1, 2, 3]
    assert listing["total"] == 4 and listing["nowPlaying"] is None

    item_b = listing["items"][2]["itemId"]
    moved = await api.call("PATCH", f"/v1/live-streams/{sid}/queue/{item_b}", body={"position": 0})
    assert moved.status == 200 and moved.json["position"] == 0
    assert order(await queue(api, sid)) == [b, c, a, d]
    moved = await api.call("PATCH", f"/v1/live-streams/{sid}/queue/{item_b}", body={"position": 9})
    assert moved.json["position"] == 3
    assert order(await queue(api, sid)) == [c, a, d, b]

    page = await queue(api, sid, "?limit=2&offset=1")
    assert order(page) == [a, d] and page["total"] == 4

    item_a = (await queue(api, sid))["items"][1]["itemId"]
    assert (await api.call("DELETE", f"/v1/live-streams/{sid}/queue/{item_a}")).status == 204
    listing = await queue(api, sid)
    assert order(listing) == [c, d, b]
    assert [i["position"] for i in listing["items"]] == [0, 1, 2]
    again = await api.call("DELETE", f"/v1/live-streams/{sid}/queue/{item_a}")
    assert again.status == 404


async def test_queue_refuses_media_that_is_not_ready_or_unknown(api: Api) -> None:
    sid = (await channel(api))["streamId"]
    processing = await add_media(api, status="processing")
    reply = await api.call("POST", f"/v1/live-streams/{sid}/queue", body={"mediaId": processing})
    assert reply.status == 409 and "processing" in reply.json["detail"]
    reply = await api.call("POST", f"/v1/live-streams/{sid}/queue", body={"mediaId": "med_nope"})
    assert reply.status == 404 and "med_nope" in reply.json["detail"]
    for body in ({}, {"mediaId": 5}, {"mediaId": "x", "position": -1}, {"mediaId": None}):
        reply = await api.call("POST", f"/v1/live-streams/{sid}/queue", body=body)
        assert reply.status == 422, (body, reply.text)


async def test_queue_is_per_environment_and_only_for_channels(api: Api) -> None:
    sid = (await channel(api))["streamId"]
    other_key = await api.new_key(env="other")
    other_media = await add_media(api, env="other")
    assert (await api.call("GET", f"/v1/live-streams/{sid}/queue", key=other_key)).status == 404
    reply = await api.call("POST", f"/v1/live-streams/{sid}/queue", body={"mediaId": other_media})
    assert reply.status == 404  # another environment's media does not exist here
    encoder = (await api.new_stream())["streamId"]
    reply = await api.call("GET", f"/v1/live-streams/{encoder}/queue")
    assert reply.status == 409 and "not a channel" in reply.json["detail"]


async def test_skip_without_playout_is_a_conflict(api: Api) -> None:
    sid = (await channel(api))["streamId"]
    reply = await api.call("POST", f"/v1/live-streams/{sid}/queue/skip")
    assert reply.status == 409 and "not playing" in reply.json["detail"]


async def test_deleting_media_queued_on_a_live_channel_is_a_conflict(api: Api) -> None:
    stream = await channel(api, name="Lobby TV")
    sid = stream["streamId"]
    media = await add_media(api)
    await enqueue(api, sid, media)
    await api.store.live_streams.update(
        (await api.store.environments.ensure(DEFAULT_ENVIRONMENT))[0].id, sid, {"state": "live"}
    )
    reply = await api.call("DELETE", f"/v1/media/{media}")
    assert reply.status == 409
    assert "Lobby TV" in reply.json["detail"] and sid in reply.json["detail"]
    # once the channel is no longer live the item goes, and leaves its queues
    await api.store.live_streams.update(
        (await api.store.environments.ensure(DEFAULT_ENVIRONMENT))[0].id, sid, {"state": "ended"}
    )
    assert (await api.call("DELETE", f"/v1/media/{media}")).status == 204
    assert (await queue(api, sid))["total"] == 0


@pytest.mark.parametrize("event", ["channel.item.started", "channel.item.failed"])
async def test_channel_events_can_be_subscribed(api: Api, event: str) -> None:
    reply = await api.call(
        "POST",
        "/v1/webhooks",
        body={"url": "https://example.com/hook", "events": [event]},
    )
    assert reply.status == 201, reply.text


async def test_a_session_ending_between_scheduled_windows_leaves_the_channel_idle(
    api: Api,
) -> None:
    """api.md: outside its schedule a channel is idle; a one-off window's end is final."""
    now = datetime.now(UTC)
    start = (now - timedelta(minutes=30)).isoformat()
    end = (now - timedelta(minutes=1)).isoformat()
    daily = await channel(api, scheduledStart=start, scheduledEnd=end, scheduleRepeat="daily")
    once = await channel(api, scheduledStart=start, scheduledEnd=end)
    directory = StoreDirectory(api.store.sessions, events=api.store.events)
    encoder = await api.new_stream()
    for stream in (daily, once, encoder):
        session = await directory.session_opened(stream["streamId"], "playout", "queue", now)
        await directory.session_closed(stream["streamId"], session, now, 10, None)
    states = [
        (await api.call("GET", f"/v1/live-streams/{s['streamId']}")).json["state"]
        for s in (daily, once, encoder)
    ]
    assert states == ["idle", "ended", "ended"]


async def test_a_channel_schedule_is_cleared_with_null(api: Api) -> None:
    """The studio empties a schedule field by sending null: the channel then has no schedule."""
    made = await channel(
        api, scheduledStart="2026-12-07T22:00:00Z", scheduledEnd="2026-12-08T01:00:00Z"
    )
    path = f"/v1/live-streams/{made['streamId']}"
    cleared = await api.call("PATCH", path, body={"scheduledStart": None, "scheduledEnd": None})
    assert cleared.status == 200, cleared.text
    assert cleared.json.get("scheduledStart") is None and cleared.json.get("scheduledEnd") is None
    again = await api.call("GET", path)
    assert again.json.get("scheduledStart") is None
    daily = await api.call("PATCH", path, body={"scheduleRepeat": "daily"})
    assert daily.status == 422  # a repeat needs a window
    other = await api.call("PATCH", path, body={"name": None})
    assert other.status == 422 and "name" in other.text  # other fields still refuse null
