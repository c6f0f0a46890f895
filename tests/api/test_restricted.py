"""Restricted keys: the short list of endpoints, and CORS for their origins only."""

from __future__ import annotations

from tests.api.conftest import Api

ORIGIN = "https://app.example.com"


async def test_restricted_key_allowed_endpoints(api: Api) -> None:
    key = await api.new_key("restricted")
    stream = await api.new_stream(key=key)
    sid = stream["streamId"]
    assert (await api.call("GET", f"/v1/live-streams/{sid}", key=key)).status == 200
    assert (
        await api.call("PATCH", f"/v1/live-streams/{sid}", key=key, body={"name": "n"})
    ).status == 200
    assert (await api.call("GET", f"/v1/live-streams/{sid}/sessions", key=key)).status == 200
    assert (await api.call("GET", "/v1/sessions/ses_nope", key=key)).status == 404


async def test_restricted_key_forbidden_elsewhere(api: Api) -> None:
    key = await api.new_key("restricted")
    sid = (await api.new_stream())["streamId"]
    for method, path in [
        ("GET", "/v1/live-streams"),
        ("DELETE", f"/v1/live-streams/{sid}"),
        ("POST", f"/v1/live-streams/{sid}/rotate-key"),
        ("POST", f"/v1/live-streams/{sid}/stop"),
        ("POST", f"/v1/live-streams/{sid}/start"),
        ("GET", f"/v1/live-streams/{sid}/health"),
        ("GET", "/v1/api-keys"),
        ("POST", "/v1/api-keys"),
        ("GET", "/v1/regions"),
        ("GET", "/v1/plans"),
    ]:
        reply = await api.call(method, path, key=key)
        assert reply.status == 403, (method, path)
        assert reply.json["status"] == 403
    assert (await api.call("GET", f"/v1/live-streams/{sid}")).status == 200


async def test_cors_preflight_for_listed_origin_only(api: Api) -> None:
    await api.new_key("restricted", corsOrigins=[ORIGIN])
    preflight = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    ok = await api.call("OPTIONS", "/v1/live-streams", key=None, headers=preflight)
    assert ok.status == 204
    assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Authorization" in ok.headers["Access-Control-Allow-Headers"]
    assert "PATCH" in ok.headers["Access-Control-Allow-Methods"]
    other = await api.call(
        "OPTIONS",
        "/v1/live-streams",
        key=None,
        headers={**preflight, "Origin": "https://evil.example"},
    )
    assert "Access-Control-Allow-Origin" not in other.headers


async def test_cors_headers_only_for_the_keys_own_origins(api: Api) -> None:
    restricted = await api.new_key("restricted", corsOrigins=[ORIGIN])
    reply = await api.call(
        "POST", "/v1/live-streams", key=restricted, body={"name": "b"}, headers={"Origin": ORIGIN}
    )
    assert reply.status == 201
    assert reply.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "RateLimit-Remaining" in reply.headers["Access-Control-Expose-Headers"]
    foreign = await api.call(
        "POST",
        "/v1/live-streams",
        key=restricted,
        body={"name": "b"},
        headers={"Origin": "https://evil.example"},
    )
    assert "Access-Control-Allow-Origin" not in foreign.headers
    full = await api.call("GET", "/v1/live-streams", headers={"Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" not in full.headers


async def test_wildcard_origin(api: Api) -> None:
    key = await api.new_key("restricted", corsOrigins=["*"])
    reply = await api.call(
        "POST",
        "/v1/live-streams",
        key=key,
        body={"name": "b"},
        headers={"Origin": "https://anything.example"},
    )
    assert reply.headers["Access-Control-Allow-Origin"] == "https://anything.example"


async def test_bad_origin_rejected(api: Api) -> None:
    reply = await api.call(
        "POST",
        "/v1/api-keys",
        body={"name": "x", "access": "restricted", "corsOrigins": ["example.com/path"]},
    )
    assert reply.status == 422
    assert reply.json["errors"][0]["field"].startswith("corsOrigins")
