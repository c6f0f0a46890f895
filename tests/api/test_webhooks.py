"""Webhooks: CRUD and validation, deliveries and retry, against a real aiohttp receiver.

Events come from the real source (``StoreDirectory`` announcing committed stream
changes on the store's hub), so these tests cover the path from a state change to a
signed POST without an encoder; tests/interop/test_webhooks.py adds ffmpeg and restarts.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web

from control_api.store.directory import StoreDirectory
from control_api.webhooks.sources import DestinationErrors
from tests.api.conftest import Api, ApiFactory
from tests.api.tus_helpers import clip
from tests.webhook_receiver import HANG, Receiver

T = TypeVar("T")
README = Path(__file__).resolve().parents[2] / "README.md"
__all__ = ["clip"]  # the fixture
LOCAL = {"allow_private_targets": True}  # the receivers listen on 127.0.0.1
FAST = {**LOCAL, "retry_base_delay": 0.2, "retry_max_delay": 0.4}


@pytest.fixture
async def api(make_api: ApiFactory) -> Api:
    return await make_api(api={"rate_limit_per_minute": 100_000}, webhooks=LOCAL)


async def until(fetch: Callable[[], Awaitable[T]], ok: Callable[[T], bool], what: str) -> T:
    deadline = time.monotonic() + 15
    while True:
        value = await fetch()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; last: {value!r}")
        await asyncio.sleep(0.05)


async def wait_received(receiver: Receiver, count: int) -> None:
    async def got() -> int:
        return len(receiver.received())

    await until(got, lambda n: n >= count, f"{count} request(s) at {receiver.url}")


async def webhook(api: Api, url: str, events: list[str] | None = None, **kw: Any) -> Any:
    reply = await api.call(
        "POST", "/v1/webhooks", body={"url": url, "events": events or ["stream.connecting"], **kw}
    )
    assert reply.status == 201, reply.text
    return reply.json


async def connect_stream(api: Api) -> dict[str, Any]:
    """What an encoder connecting does to the store: stream.connecting is announced."""
    stream = await api.new_stream()
    directory = StoreDirectory(api.store.sessions, events=api.store.events)
    await directory.session_opened(stream["streamId"], "rtmp", "127.0.0.1:5000", datetime.now(UTC))
    return stream


async def deliveries(api: Api, webhook_id: str) -> list[dict[str, Any]]:
    reply = await api.call("GET", f"/v1/webhooks/{webhook_id}/deliveries")
    assert reply.status == 200, reply.text
    assert reply.json["total"] == len(reply.json["deliveries"])
    return list(reply.json["deliveries"])


def readme_verifier() -> Callable[..., bool]:
    """The Python recipe from the README, run as written."""
    text = README.read_text()
    section = text[text.index("### Verifying webhook signatures") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    scope: dict[str, Any] = {}
    exec(code.group(1), scope)  # the documented recipe, as written, is what is under test
    verify: Callable[..., bool] = scope["verify_signature"]
    return verify


# ---------------------------------------------------------------- CRUD and validation


async def test_create_shows_the_generated_secret_once(api: Api) -> None:
    created = await webhook(api, "https://hooks.example.com/relaycast?x=1", ["stream.live"])
    assert created["webhookId"].startswith("whk_")
    assert created["url"] == "https://hooks.example.com/relaycast?x=1"
    assert created["events"] == ["stream.live"]
    assert re.fullmatch(r"whsec_[A-Za-z0-9_-]{32}", created["secret"])
    one = await api.call("GET", f"/v1/webhooks/{created['webhookId']}")
    assert one.status == 200
    assert "secret" not in one.json and created["secret"] not in one.text
    listed = await api.call("GET", "/v1/webhooks")
    assert listed.json["total"] == 1 and created["secret"] not in listed.text
    assert listed.json["webhooks"][0] == one.json


async def test_own_secret_duplicate_events_list_and_delete(api: Api) -> None:
    mine = await webhook(
        api,
        "http://127.0.0.1:9/x",
        ["stream.ended", "stream.ended", "media.ready"],
        secret="my-own-secret-0123456789",
    )
    assert mine["secret"] == "my-own-secret-0123456789"
    assert mine["events"] == ["stream.ended", "media.ready"]
    other = await webhook(api, "http://[::1]:8080/", ["task.failed"])
    page = await api.call("GET", "/v1/webhooks?limit=1")
    assert page.json["total"] == 2 and len(page.json["webhooks"]) == 1
    assert (await api.call("DELETE", f"/v1/webhooks/{mine['webhookId']}")).status == 204
    assert (await api.call("DELETE", f"/v1/webhooks/{mine['webhookId']}")).status == 404
    assert (await api.call("GET", f"/v1/webhooks/{mine['webhookId']}")).status == 404
    left = await api.call("GET", "/v1/webhooks")
    assert [w["webhookId"] for w in left.json["webhooks"]] == [other["webhookId"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/x", "events": ["stream.live"]}, "url"),
        ({"url": "http://", "events": ["stream.live"]}, "url"),
        ({"url": "example.com/hook", "events": ["stream.live"]}, "url"),
        ({"url": "https://user:pw@example.com/", "events": ["stream.live"]}, "url"),
        ({"url": "https://example.com:99999/", "events": ["stream.live"]}, "url"),
        ({"url": "https://exa mple.com/", "events": ["stream.live"]}, "url"),
        ({"url": "https://example.com/", "events": []}, "events"),
        ({"url": "https://example.com/", "events": ["stream.exploded"]}, "events.0"),
        ({"url": "https://example.com/", "events": ["stream.live"], "secret": "short"}, "secret"),
        ({"url": "https://example.com/"}, "events"),
        ({"events": ["stream.live"]}, "url"),
        ({"url": "https://example.com/", "events": ["stream.live"], "extra": 1}, "extra"),
    ],
)
async def test_invalid_bodies_are_422_problems_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    reply = await api.call("POST", "/v1/webhooks", body=body)
    assert reply.status == 422, reply.text
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert reply.json["errors"][0]["field"] == field  # no pydantic union tags
    assert len(reply.json["errors"]) == 1
    assert (await api.call("GET", "/v1/webhooks")).json["total"] == 0


async def test_other_environments_and_restricted_keys_cannot_see_them(api: Api) -> None:
    created = await webhook(api, "https://example.com/hook")
    path = f"/v1/webhooks/{created['webhookId']}"
    staging = await api.new_key(env="staging")
    assert (await api.call("GET", path, key=staging)).status == 404
    assert (await api.call("DELETE", path, key=staging)).status == 404
    assert (await api.call("GET", "/v1/webhooks", key=staging)).json["total"] == 0
    restricted = await api.new_key(access="restricted")
    assert (await api.call("GET", "/v1/webhooks", key=restricted)).status == 403
    assert (await api.call("GET", path, key=restricted)).status == 403
    change = {"events": ["stream.live"]}
    assert (await api.call("PATCH", path, body=change, key=staging)).status == 404
    assert (await api.call("PATCH", path, body=change, key=restricted)).status == 403
    assert (await api.call("GET", path)).json["events"] == created["events"]


async def test_webhooks_per_environment_are_limited(make_api: ApiFactory) -> None:
    api = await make_api(webhooks={"max_webhooks_per_environment": 2})
    await webhook(api, "https://example.com/1")
    await webhook(api, "https://example.com/2")
    reply = await api.call(
        "POST", "/v1/webhooks", body={"url": "https://example.com/3", "events": ["stream.live"]}
    )
    assert reply.status == 409 and "2 webhooks" in reply.json["detail"]


# ---------------------------------------------------------------- delivery


async def test_event_is_signed_per_the_readme_and_shaped_as_documented(api: Api) -> None:
    verify = readme_verifier()
    with Receiver() as receiver:
        hook = await webhook(api, receiver.url, ["stream.connecting"])
        stream = await connect_stream(api)
        await wait_received(receiver, 1)
        got = receiver.received()[0]
    header = got.headers["Relaycast-Signature"]
    assert verify(hook["secret"], header, got.body)
    assert not verify("whsec_wrong_secret_0000000000000", header, got.body)
    assert not verify(hook["secret"], header, got.body.replace(b"connecting", b"live"))
    event = got.json
    assert event["type"] == "stream.connecting" and event["id"].startswith("evt_")
    assert got.headers["Relaycast-Event-Id"] == event["id"]
    assert got.headers["Content-Type"] == "application/json"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["createdAt"])
    env = await api.store.environments.get_by_name("default")
    assert env is not None and event["environmentId"] == env.id
    data = event["data"]
    assert data["streamId"] == stream["streamId"] and data["state"] == "connecting"
    assert "streamKey" not in data["ingest"]
    assert stream["ingest"]["streamKey"] not in got.body.decode()
    [row] = await until(
        lambda: deliveries(api, hook["webhookId"]),
        lambda r: r[0]["status"] != "pending",
        "the attempt to be recorded",
    )
    assert row["status"] == "delivered" and row["attempts"] == 1
    assert row["responseStatus"] == 204 and row["eventId"] == event["id"]


async def test_only_subscribed_events_are_sent(api: Api) -> None:
    with Receiver() as wanted, Receiver() as other:
        hook = await webhook(api, wanted.url, ["stream.connecting"])
        skip = await webhook(api, other.url, ["stream.ended"])
        await connect_stream(api)
        await wait_received(wanted, 1)
        assert len(await deliveries(api, hook["webhookId"])) == 1
        assert await deliveries(api, skip["webhookId"]) == []
        assert other.received() == []


async def test_receiver_failing_twice_gets_the_event_three_times(make_api: ApiFactory) -> None:
    api = await make_api(webhooks=FAST)
    with Receiver(lambda n: 500 if n <= 2 else 200) as receiver:
        hook = await webhook(api, receiver.url)
        await connect_stream(api)
        rows = await until(
            lambda: deliveries(api, hook["webhookId"]),
            lambda r: bool(r) and r[0]["status"] == "delivered",
            "the delivery to succeed",
        )
        await asyncio.sleep(0.5)  # long enough for a (wrong) fourth attempt to show
        sent = receiver.received()
    assert len(sent) == 3
    assert len({r.json["id"] for r in sent}) == 1
    assert len({r.body for r in sent}) == 1  # byte-identical retries
    [row] = rows
    assert row["attempts"] == 3 and row["responseStatus"] == 200
    assert row.get("error") is None and row["deliveredAt"]


async def test_failing_attempts_show_status_and_retry_resends(make_api: ApiFactory) -> None:
    api = await make_api(webhooks={**LOCAL, "retry_base_delay": 3600})
    statuses = {"now": 503}
    with Receiver(lambda _n: statuses["now"]) as receiver:
        hook = await webhook(api, receiver.url)
        await connect_stream(api)
        [row] = await until(
            lambda: deliveries(api, hook["webhookId"]),
            lambda r: bool(r) and r[0]["attempts"] == 1,
            "the first attempt",
        )
        assert row["status"] == "pending" and row["responseStatus"] == 503
        assert "503" in row["error"] and row["nextAttemptAt"] > row["createdAt"]
        statuses["now"] = 200
        path = f"/v1/webhooks/{hook['webhookId']}/deliveries/{row['deliveryId']}/retry"
        retried = await api.call("POST", path)
        assert retried.status == 202, retried.text
        assert retried.json["status"] == "pending"
        [done] = await until(
            lambda: deliveries(api, hook["webhookId"]),
            lambda r: r[0]["status"] == "delivered",
            "the retried delivery",
        )
        assert done["attempts"] == 2 and done["responseStatus"] == 200
        # a delivered one can be sent again too (the receiver lost it, say)
        assert (await api.call("POST", path)).status == 202
        await wait_received(receiver, 3)
    bad = f"/v1/webhooks/{hook['webhookId']}/deliveries/whd_nope/retry"
    assert (await api.call("POST", bad)).status == 404
    assert (await api.call("POST", "/v1/webhooks/whk_nope/deliveries/x/retry")).status == 404
    assert (await api.call("GET", "/v1/webhooks/whk_nope/deliveries")).status == 404


async def test_gives_up_after_the_retry_window(make_api: ApiFactory) -> None:
    api = await make_api(webhooks={**FAST, "retry_window_hours": 0.0003})  # about 1 s
    with Receiver(lambda _n: 500) as receiver:
        hook = await webhook(api, receiver.url)
        await connect_stream(api)
        [row] = await until(
            lambda: deliveries(api, hook["webhookId"]),
            lambda r: bool(r) and r[0]["status"] == "failed",
            "the delivery to give up",
        )
        tries = len(receiver.received())
    assert row["attempts"] == tries >= 2
    assert row.get("nextAttemptAt") is None
    dispatcher = api_dispatcher(api)
    assert dispatcher.counters["gave_up"] == 1
    assert dispatcher.counters["failed"] == tries - 1


async def test_a_hung_receiver_does_not_delay_another(make_api: ApiFactory) -> None:
    api = await make_api(webhooks={**LOCAL, "timeout": 60})
    with Receiver(lambda _n: HANG) as hung, Receiver() as healthy:
        await webhook(api, hung.url)
        await webhook(api, healthy.url)
        for _ in range(3):
            await connect_stream(api)
        await wait_received(healthy, 3)
        # every event reached the healthy receiver while the first POST to the hung one
        # is still open, and no second one was started (one attempt at a time per webhook)
        assert hung.started_requests == 1 and hung.received() == []


def api_dispatcher(api: Api) -> Any:
    """The dispatcher of the app serving ``api`` (found through the hub it listens on)."""
    [listener] = api.store.events.listeners
    return listener


async def test_destination_error_carries_the_destination(api: Api) -> None:
    with Receiver() as receiver:
        await webhook(api, receiver.url, ["destination.error"])
        stream = await api.new_stream()
        created = await api.call(
            "POST",
            f"/v1/live-streams/{stream['streamId']}/destinations",
            body={"url": "rtmp://127.0.0.1:9/live", "streamKey": "dest-secret-key"},
        )
        assert created.status == 201, created.text
        env = await api.store.environments.get_by_name("default")
        assert env is not None
        source = DestinationErrors(api.store)
        source.destination_error(
            env.id, stream["streamId"], created.json["destinationId"], "connection refused"
        )
        source.destination_error(env.id, stream["streamId"], "dst_gone", "removed meanwhile")
        await wait_received(receiver, 1)
        await asyncio.sleep(0.3)  # a second (wrong) event for the unknown destination would show
        [got] = receiver.received()
    event = got.json
    assert event["type"] == "destination.error"
    assert event["data"]["destinationId"] == created.json["destinationId"]
    assert event["data"]["streamId"] == stream["streamId"]
    assert "dest-secret-key" not in got.body.decode()


async def test_media_library_announces_media_ready_and_task_failed(
    make_api: ApiFactory, clip: bytes
) -> None:
    api = await make_api(media={"allow_private_import_targets": True}, webhooks=LOCAL)
    files = web.Application()

    async def serve_clip(_request: web.Request) -> web.Response:
        return web.Response(body=clip, content_type="video/mp4")

    files.router.add_get("/clip.mp4", serve_clip)
    runner = web.AppRunner(files, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    origin = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        with Receiver() as receiver:
            await webhook(api, receiver.url, ["media.ready", "task.failed"])
            good = await api.call("POST", "/v1/media/import", body={"url": f"{origin}/clip.mp4"})
            bad = await api.call("POST", "/v1/media/import", body={"url": f"{origin}/missing"})
            assert good.status == bad.status == 201
            await wait_received(receiver, 2)
            events = {e["type"]: e for e in receiver.events()}
    finally:
        await runner.cleanup()
    ready = events["media.ready"]["data"]
    assert ready["status"] == "ready" and ready["video"]["codec"] == "h264"
    done = await api.call("GET", f"/v1/tasks/{good.json['taskId']}")
    assert ready["mediaId"] == done.json["result"]["mediaId"]
    failed = events["task.failed"]["data"]
    assert failed["taskId"] == bad.json["taskId"] and failed["status"] == "failed"
    assert "404" in failed["error"]


REFUSED = [
    ({}, "{receiver}", "webhooks.allow_private_targets"),
    ({}, "http://localhost:{own}/hook", "localhost resolves to"),
    (LOCAL, "http://169.254.169.254/latest/meta-data/", "link-local"),
    (LOCAL, "http://[fe80::1]:8080/", "link-local"),
    (LOCAL, "http://localhost:{own}/v1/webhooks", "own HTTP port"),
]


@pytest.mark.parametrize(("settings", "url", "reason"), REFUSED)
async def test_forbidden_urls_are_refused_on_create_and_patch_naming_why(
    make_api: ApiFactory, settings: dict[str, Any], url: str, reason: str
) -> None:
    api = await make_api(webhooks=settings)
    own = api.base.rsplit(":", 1)[1]
    with Receiver() as receiver:
        target = url.format(receiver=receiver.url, own=own)
        created = await api.call(
            "POST", "/v1/webhooks", body={"url": target, "events": ["stream.live"]}
        )
        assert created.status == 422, created.text
        assert created.json["errors"][0]["field"] == "url"
        assert (
            reason in created.json["detail"]
            and "webhooks.allow_private_targets" in (created.json["detail"])
        )
        assert (await api.call("GET", "/v1/webhooks")).json["total"] == 0
        hook = await webhook(api, "https://hooks.example.com/relaycast")
        patched = await api.call("PATCH", f"/v1/webhooks/{hook['webhookId']}", body={"url": target})
        assert patched.status == 422, patched.text
        assert reason in patched.json["detail"]
        got = await api.call("GET", f"/v1/webhooks/{hook['webhookId']}")
        assert got.json["url"] == "https://hooks.example.com/relaycast"


async def test_patch_changes_url_and_events_and_pending_deliveries_follow(api: Api) -> None:
    with Receiver() as first, Receiver() as second:
        hook = await webhook(api, first.url, ["stream.live"])
        patched = await api.call(
            "PATCH",
            f"/v1/webhooks/{hook['webhookId']}",
            body={"url": second.url, "events": ["stream.connecting", "stream.connecting"]},
        )
        assert patched.status == 200, patched.text
        assert patched.json["url"] == second.url
        assert patched.json["events"] == ["stream.connecting"]
        assert "secret" not in patched.json
        await connect_stream(api)
        await wait_received(second, 1)
        assert first.received() == []
    missing = await api.call("PATCH", "/v1/webhooks/whk_nope", body={"events": ["stream.live"]})
    assert missing.status == 404
    bad = await api.call("PATCH", f"/v1/webhooks/{hook['webhookId']}", body={"events": []})
    assert bad.status == 422
    for method, path in (("POST", "/v1/webhooks"), ("PATCH", f"/v1/webhooks/{hook['webhookId']}")):
        body = {"url": "http://[DD]/", "events": ["stream.live"]}
        bad = await api.call(method, path, body=body)
        assert bad.status == 422 and "not a valid URL" in bad.json["detail"], bad.text


@pytest.mark.parametrize(("settings", "url", "reason"), REFUSED)
async def test_refused_targets_fail_at_once_without_retries(
    make_api: ApiFactory, settings: dict[str, Any], url: str, reason: str
) -> None:
    """The same guard at delivery time: a name can resolve elsewhere after it was
    registered (stored directly here, as the API now refuses it)."""
    api = await make_api(webhooks={**settings, "retry_base_delay": 0.1})
    own = api.base.rsplit(":", 1)[1]
    env = await api.store.environments.get_by_name("default")
    assert env is not None
    with Receiver() as receiver:
        target = url.format(receiver=receiver.url, own=own)
        hook = await api.store.webhooks.create(
            env.id, target, ["stream.connecting"], "s" * 32, datetime.now(UTC)
        )
        await connect_stream(api)
        [row] = await until(
            lambda: deliveries(api, hook.id),
            lambda r: bool(r) and r[0]["status"] != "pending",
            "the refused delivery",
        )
        assert receiver.received() == []
    assert row["status"] == "failed" and row["attempts"] == 1
    assert row["error"].startswith("refused: ") and reason in row["error"]
    assert row.get("responseStatus") is None


async def test_session_ending_in_error_sends_stream_error_after_connecting(api: Api) -> None:
    with Receiver() as receiver:
        await webhook(api, receiver.url, ["stream.connecting", "stream.error", "stream.ended"])
        stream = await api.new_stream()
        directory = StoreDirectory(api.store.sessions, events=api.store.events)
        now = datetime.now(UTC)
        session = await directory.session_opened(stream["streamId"], "srt", "127.0.0.1:1", now)
        await directory.session_closed(stream["streamId"], session, now, 10, "bitrate over plan")
        await wait_received(receiver, 2)
        events = receiver.events()
    assert [e["type"] for e in events] == ["stream.connecting", "stream.error"]
    assert events[1]["data"]["state"] == "error"
    assert events[1]["data"]["errorReason"] == "bitrate over plan"
