"""Every resource is scoped to the key's environment: foreign ids are 404, never 403."""

from __future__ import annotations

from tests.api.conftest import Api


async def test_foreign_stream_is_invisible(api: Api) -> None:
    mine = await api.new_stream(name="mine")
    other = await api.new_key(env="staging")
    sid = mine["streamId"]
    for method, path, body in [
        ("GET", f"/v1/live-streams/{sid}", None),
        ("PATCH", f"/v1/live-streams/{sid}", {"name": "stolen"}),
        ("DELETE", f"/v1/live-streams/{sid}", None),
        ("POST", f"/v1/live-streams/{sid}/rotate-key", None),
        ("POST", f"/v1/live-streams/{sid}/stop", None),
        ("POST", f"/v1/live-streams/{sid}/start", None),
        ("GET", f"/v1/live-streams/{sid}/sessions", None),
        ("GET", f"/v1/live-streams/{sid}/health", None),
    ]:
        reply = await api.call(method, path, key=other, body=body)
        assert reply.status == 404, (method, path, reply.text)
    listed = await api.call("GET", "/v1/live-streams", key=other)
    assert listed.json == {"streams": [], "total": 0}
    still = await api.call("GET", f"/v1/live-streams/{sid}")
    assert still.json["name"] == "mine"


async def test_keys_are_scoped(api: Api) -> None:
    other = await api.new_key(env="staging")
    mine = (await api.call("GET", "/v1/api-keys")).json["apiKeys"]
    theirs = (await api.call("GET", "/v1/api-keys", key=other)).json["apiKeys"]
    assert {k["keyId"] for k in mine}.isdisjoint({k["keyId"] for k in theirs})
    target = mine[0]["keyId"]
    assert (await api.call("DELETE", f"/v1/api-keys/{target}", key=other)).status == 404
    assert (await api.call("GET", "/v1/regions")).status == 200
