"""Per-key rate limit with RateLimit-* headers on every response."""

from __future__ import annotations

from tests.api.conftest import ApiFactory


async def test_429_after_limit_with_retry_after(make_api: ApiFactory) -> None:
    api = await make_api(api={"rate_limit_per_minute": 5})
    remaining = []
    for _ in range(5):
        reply = await api.call("GET", "/v1/regions")
        assert reply.status == 200
        assert reply.headers["RateLimit-Limit"] == "5"
        remaining.append(int(reply.headers["RateLimit-Remaining"]))
        assert 0 < int(reply.headers["RateLimit-Reset"]) <= 60
    assert remaining == [4, 3, 2, 1, 0]
    over = await api.call("GET", "/v1/regions")
    assert over.status == 429
    assert over.headers["Content-Type"].startswith("application/problem+json")
    assert 0 < int(over.headers["Retry-After"]) <= 60
    assert over.headers["RateLimit-Remaining"] == "0"
    # another key has its own budget
    other = await api.new_key(env="default")
    assert (await api.call("GET", "/v1/regions", key=other)).status == 200


async def test_headers_on_errors_too(make_api: ApiFactory) -> None:
    api = await make_api(api={"rate_limit_per_minute": 50})
    reply = await api.call("GET", "/v1/live-streams/ls_nope")
    assert reply.status == 404
    assert reply.headers["RateLimit-Limit"] == "50"


async def test_failed_auth_is_throttled_per_address(make_api: ApiFactory) -> None:
    api = await make_api(api={"rate_limit_per_minute": 3})
    statuses = [(await api.call("GET", "/v1/regions", key="rk_guess")).status for _ in range(5)]
    assert statuses[:3] == [401, 401, 401]
    assert statuses[3:] == [429, 429]
    assert (await api.call("GET", "/v1/regions")).status == 200


async def test_tus_transfer_does_not_spend_the_budget(make_api: ApiFactory) -> None:
    """A large upload is thousands of PATCHes; only creating it counts."""
    from tests.api.tus_helpers import new_upload, offset_of, patch

    api = await make_api(api={"rate_limit_per_minute": 3})
    path = await new_upload(api, 40, filename="x.bin")
    for i in range(10):
        reply = await patch(api, path, i * 4, b"abcd")
        assert reply.status == 204, reply.text
        assert reply.headers["RateLimit-Remaining"] == "2"
        assert await offset_of(api, path) == (i + 1) * 4
    assert (await api.call("GET", "/v1/regions")).status == 200
