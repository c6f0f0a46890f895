"""Errors raised by handlers outside the operation table still explain themselves."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from control_api.middlewares import error_middleware


async def _client(handler: web.RequestHandler) -> TestClient:  # type: ignore[type-arg]
    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/x", handler)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_a_handlers_reason_reaches_the_problem_detail() -> None:
    async def refuse(request: web.Request) -> web.Response:
        raise web.HTTPBadRequest(text="_HLS_msn=150 is more than two segments ahead\n")

    client = await _client(refuse)
    try:
        resp = await client.get("/x")
        assert resp.status == 400
        assert resp.headers["Content-Type"].startswith("application/problem+json")
        assert (await resp.json())["detail"] == "_HLS_msn=150 is more than two segments ahead"
    finally:
        await client.close()


async def test_a_bare_status_keeps_its_phrase() -> None:
    async def gone(request: web.Request) -> web.Response:
        raise web.HTTPNotFound()

    client = await _client(gone)
    try:
        resp = await client.get("/x")
        assert resp.status == 404
        assert (await resp.json())["detail"] == "Not Found"
    finally:
        await client.close()


async def test_a_503_keeps_its_retry_after() -> None:
    async def busy(request: web.Request) -> web.Response:
        raise web.HTTPServiceUnavailable(headers={"Retry-After": "2"}, text="not yet\n")

    client = await _client(busy)
    try:
        resp = await client.get("/x")
        assert resp.status == 503 and resp.headers["Retry-After"] == "2"
        assert (await resp.json())["detail"] == "not yet"
    finally:
        await client.close()
