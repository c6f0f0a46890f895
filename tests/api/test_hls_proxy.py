"""The HLS proxy of a node among several, against a stand-in owner on 127.0.0.1: what
it passes through, and its bounds (body size, timeout, one lookup per period)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from server.hls import http as hls_http
from server.hls.packager import HlsService
from server.hls.proxy import HlsProxy, ProxyLimits
from server.settings import HlsSettings

LIMITS = ProxyLimits(
    timeout=0.5, connect_timeout=0.5, max_body_bytes=64 * 1024, max_connections=4, lookup_seconds=5
)


class Lookup:
    def __init__(self, url: str) -> None:
        self.url = url
        self.asked: list[str] = []

    async def owner_url(self, edge_id: str) -> str | None:
        self.asked.append(edge_id)
        return self.url if edge_id.startswith("lse_far") else None


async def _owner(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name == "seg1.m4s":
        return web.Response(body=b"x" * (LIMITS.max_body_bytes + 1))
    if name == "seg2.m4s":
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(4):
            await response.write(b"y" * 32 * 1024)
        await response.write_eof()
        return response
    if name == "init1.mp4":
        await asyncio.sleep(1.5)
    if name == "seg404.m4s":
        raise web.HTTPNotFound()
    seen = f"{request.path_qs} {request.headers.get('Relaycast-Viewer')}"
    return web.Response(text=seen, headers={"Cache-Control": "no-cache"})


async def _site(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = next(a[1] for a in runner.addresses if isinstance(a, tuple))
    return runner, f"http://127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def _rig() -> AsyncIterator[tuple[str, Lookup]]:
    owner = web.Application()
    owner.router.add_get("/live/{edgeId}/{name}", _owner)
    owner_runner, owner_url = await _site(owner)
    lookup = Lookup(owner_url)
    proxy = HlsProxy(lookup, LIMITS)
    front = web.Application()
    hls_http.mount(front, HlsService(HlsSettings()), proxy)
    front_runner, front_url = await _site(front)
    try:
        yield front_url, lookup
    finally:
        await proxy.close()
        await front_runner.cleanup()
        await owner_runner.cleanup()


async def test_the_proxy_passes_the_request_on_and_keeps_its_bounds() -> None:
    async with _rig() as (base, lookup), aiohttp.ClientSession() as http:
        url = f"{base}/live/lse_far/media.m3u8?_HLS_msn=7&_HLS_part=2"
        async with http.get(url) as resp:
            assert resp.status == 200
            assert resp.headers["Cache-Control"] == "no-cache"
            text = await resp.text()
        assert text == "/live/lse_far/media.m3u8?_HLS_msn=7&_HLS_part=2 127.0.0.1"

        async with http.get(f"{base}/live/lse_far/seg1.m4s") as resp:
            assert resp.status == 502  # announced over the limit: never started
        try:
            async with http.get(f"{base}/live/lse_far/seg2.m4s") as resp:
                await resp.read()
            cut = False
        except aiohttp.ClientPayloadError:
            cut = True
        assert cut, "a body over the limit must be cut, never end cleanly"

        loop = asyncio.get_running_loop()
        started = loop.time()
        async with http.get(f"{base}/live/lse_far/init1.mp4") as resp:
            assert resp.status == 502
        assert loop.time() - started < 2 * LIMITS.timeout

        async with http.get(f"{base}/live/lse_far/passwd") as resp:
            assert resp.status == 404  # not an HLS name: never forwarded
        async with http.get(f"{base}/live/lse_near/master.m3u8") as resp:
            assert resp.status == 404  # no other node carries it
        for _ in range(3):
            async with http.get(f"{base}/live/lse_near/master.m3u8") as resp:
                assert resp.status == 404
    assert lookup.asked.count("lse_near") == 1  # remembered for lookup_seconds


async def test_a_known_owner_is_refreshed_off_the_request_path_and_dropped_on_404() -> None:
    """Past lookup_seconds the known owner still answers while the database is asked
    again in the background; an owner's 404 (the stream moved) forgets it at once."""
    async with _rig() as (base, lookup), aiohttp.ClientSession() as http:
        owner = lookup.url
        proxy = HlsProxy(lookup, ProxyLimits(1, 1, 1 << 20, 4, lookup_seconds=0))
        assert await proxy.owner("lse_far") == owner
        lookup.url = "http://127.0.0.1:9"  # the stream moved
        assert await proxy.owner("lse_far") != lookup.url  # the known one, at once
        await asyncio.sleep(0.05)  # the background refresh
        assert await proxy.owner("lse_far") == lookup.url
        assert lookup.asked.count("lse_far") >= 2
        await proxy.close()

        lookup.url = owner
        asked = len(lookup.asked)
        async with http.get(f"{base}/live/lse_far/seg404.m4s") as resp:
            assert resp.status == 404
        async with http.get(f"{base}/live/lse_far/seg404.m4s") as resp:
            assert resp.status == 404
        assert len(lookup.asked) == asked + 2  # looked up again after the owner's 404
