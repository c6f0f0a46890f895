"""Authentication: API keys, tokens, revocation."""

from __future__ import annotations

import asyncio

from tests.api.conftest import Api, ApiFactory

PROBLEM = "application/problem+json"


async def test_missing_and_malformed_credentials_are_401_problems(api: Api) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}):
        reply = await api.call("GET", "/v1/live-streams", key=None, headers=headers)
        assert reply.status == 401
        assert reply.headers["Content-Type"].startswith(PROBLEM)
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")
        assert reply.json["status"] == 401


async def test_unknown_key_is_401(api: Api) -> None:
    reply = await api.call("GET", "/v1/live-streams", key="rk_" + "x" * 32)
    assert reply.status == 401


async def test_api_key_lifecycle_secret_shown_once(api: Api) -> None:
    created = await api.call("POST", "/v1/api-keys", body={"name": "ci", "access": "full"})
    assert created.status == 201
    key = created.json
    assert key["key"].startswith("rk_") and len(key["key"]) >= 3 + 22
    assert key["prefix"] == key["key"][:8]
    assert key["keyId"].startswith("key_")
    listed = await api.call("GET", "/v1/api-keys")
    assert listed.status == 200
    assert all("key" not in k for k in listed.json["apiKeys"])
    assert key["keyId"] in {k["keyId"] for k in listed.json["apiKeys"]}
    assert listed.json["total"] == len(listed.json["apiKeys"])
    assert key["key"] not in listed.text


async def test_revocation_takes_effect_on_next_request_and_spares_others(api: Api) -> None:
    victim = await api.new_key()
    other = await api.new_key()
    assert (await api.call("GET", "/v1/live-streams", key=victim)).status == 200
    keys = (await api.call("GET", "/v1/api-keys")).json["apiKeys"]
    victim_id = next(k["keyId"] for k in keys if victim.startswith(k["prefix"]))
    assert (await api.call("DELETE", f"/v1/api-keys/{victim_id}")).status == 204
    assert (await api.call("GET", "/v1/live-streams", key=victim)).status == 401
    assert (await api.call("GET", "/v1/live-streams", key=other)).status == 200
    assert (await api.call("DELETE", f"/v1/api-keys/{victim_id}")).status == 404


async def test_last_used_is_recorded(api: Api) -> None:
    key = await api.new_key()
    await api.call("GET", "/v1/regions", key=key)
    keys = (await api.call("GET", "/v1/api-keys")).json["apiKeys"]
    used = next(k for k in keys if key.startswith(k["prefix"]))
    assert used["lastUsedAt"].endswith("Z")


async def test_token_acts_as_key_and_dies_with_it(api: Api) -> None:
    key = await api.new_key()
    reply = await api.call("POST", "/v1/auth/token", key=None, body={"apiKey": key})
    assert reply.status == 200
    token = reply.json["authorizationToken"]
    assert reply.json["expiresIn"] == 3600
    assert (await api.call("GET", "/v1/live-streams", key=token)).status == 200
    keys = (await api.call("GET", "/v1/api-keys")).json["apiKeys"]
    key_id = next(k["keyId"] for k in keys if key.startswith(k["prefix"]))
    await api.call("DELETE", f"/v1/api-keys/{key_id}")
    assert (await api.call("GET", "/v1/live-streams", key=token)).status == 401


async def test_token_expires(make_api: ApiFactory) -> None:
    api = await make_api(api={"token_ttl_seconds": 1})
    token = (
        await api.call("POST", "/v1/auth/token", key=None, body={"apiKey": api.admin_key})
    ).json
    assert (await api.call("GET", "/v1/regions", key=token["authorizationToken"])).status == 200
    await asyncio.sleep(2.05)
    assert (await api.call("GET", "/v1/regions", key=token["authorizationToken"])).status == 401


async def test_tampered_token_is_401(api: Api) -> None:
    token = (
        await api.call("POST", "/v1/auth/token", key=None, body={"apiKey": api.admin_key})
    ).json
    forged = token["authorizationToken"][:-3] + "AAA"
    assert (await api.call("GET", "/v1/regions", key=forged)).status == 401


async def test_token_with_bad_key_or_body(api: Api) -> None:
    assert (
        await api.call("POST", "/v1/auth/token", key=None, body={"apiKey": "rk_nope"})
    ).status == 401
    assert (await api.call("POST", "/v1/auth/token", key=None, body={})).status == 422
    bad = await api.call(
        "POST", "/v1/auth/token", key=None, raw="{", headers={"Content-Type": "application/json"}
    )
    assert bad.status == 400
