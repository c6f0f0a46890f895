"""Glass-to-glass latency over WebRTC, in Chromium: WHIP in, WHEP out, one clock.

The page is the browser test's (``tests/browser/g2g.html``): it stamps the wall clock
into every frame of a canvas, publishes the canvas over WHIP, plays the stream back over
WHEP in the same page and reads the stamp of every frame the video element presents;
latency = now - stamp. The page is served from its own origin (WHIP and WHEP are
cross-origin, as from a customer's site). Chromium is driven over a bare DevTools
connection, like the HLS benchmark's, so that the benchmark needs no test extras.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from bench.scenarios import ROOT, Result
from tests.chromium import PLAYER_FLAGS, devtools_page, free_port

PAGE = ROOT / "tests" / "browser" / "g2g.html"
FLAGS = [
    *PLAYER_FLAGS,
    # host candidates as addresses, not mDNS names (nothing resolves .local here)
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
SKIP = 50
"""Frames left out at the start (the player settling)."""


class DevTools:
    """Runtime.evaluate over one page's DevTools socket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ident = 0

    async def evaluate(self, expression: str, limit: float = 30.0) -> Any:
        self.ident += 1
        params = {"expression": expression, "returnByValue": True, "awaitPromise": True}
        await self.ws.send_json({"id": self.ident, "method": "Runtime.evaluate", "params": params})
        while True:
            message = await self.ws.receive_json(timeout=limit)
            if message.get("id") == self.ident:
                break
        result = message.get("result", {})
        if "exceptionDetails" in result:
            raise RuntimeError(f"page: {result['exceptionDetails'].get('exception', result)}")
        return result.get("result", {}).get("value")


async def _page_server() -> tuple[web.AppRunner, str]:
    app = web.Application()
    html = PAGE.read_text()

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    app.router.add_get("/g2g.html", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/g2g.html"


async def glass_to_glass(
    base: str, key: str, edge: str, frames: int, live: Callable[[], Awaitable[object]]
) -> Result:
    """Publish with ``key``, wait for ``live()``, watch ``edge`` on the server at ``base``;
    latencies of ``frames`` frames after the first ``SKIP``."""
    chromium = shutil.which("chromium")
    if chromium is None:
        return {"error": "chromium is not installed"}
    runner, page = await _page_server()
    port = free_port()
    # Chromium's helper processes may still be writing the profile when the browser is
    # killed: the whole process group goes, and a leftover file never fails the run.
    profile = tempfile.TemporaryDirectory(prefix="bench-chromium-", ignore_cleanup_errors=True)
    browser = await asyncio.create_subprocess_exec(
        chromium, *FLAGS, f"--remote-debugging-port={port}", f"--user-data-dir={profile.name}",
        page, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as http:
            socket_url = await devtools_page(http, port)
            async with http.ws_connect(socket_url, max_msg_size=0) as ws:
                tools = DevTools(ws)
                await _loaded(tools)
                await tools.evaluate(f"window.publish({base!r}, {key!r})")
                await live()
                await tools.evaluate(f"window.watch({base!r}, {edge!r})")
                samples = await _collect(tools, SKIP + frames)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(browser.pid, signal.SIGKILL)
        await browser.wait()
        profile.cleanup()
        await runner.cleanup()
    return summarize(samples[SKIP:])


async def _loaded(tools: DevTools) -> None:
    for _ in range(100):
        if await tools.evaluate("typeof window.publish === 'function'"):
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("the glass-to-glass page never loaded")


async def _collect(tools: DevTools, wanted: int, limit: float = 60.0) -> list[float]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline:
        if await tools.evaluate("window.samples.length") >= wanted:
            break
        await asyncio.sleep(0.5)
    samples: list[float] = await tools.evaluate("window.samples")
    return samples


def summarize(latencies: list[float]) -> Result:
    """p50 / p95 / max in milliseconds of the frames read back."""
    if not latencies:
        return {"frames": 0, "error": "no frame read back"}
    ordered = sorted(latencies)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return {
        "frames": len(ordered),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(p95, 1),
        "max_ms": round(ordered[-1], 1),
    }
