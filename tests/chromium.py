"""Headless Chromium as the tests and the benchmarks start it (Debian's package).

Without the background-networking flags Chromium tries to reach Google's hosts at every
start and this machine's closed network refuses them, many at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import aiohttp

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PLAYER_FLAGS = [*FLAGS, "--autoplay-policy=no-user-gesture-required", "--mute-audio"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def devtools_page(http: aiohttp.ClientSession, port: int) -> str:
    """The WebSocket URL of the first page of a Chromium started with
    ``--remote-debugging-port=port``, once its DevTools endpoint answers."""
    for _ in range(100):
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                pages = [p for p in await resp.json() if p.get("type") == "page"]
            if pages:
                return str(pages[0]["webSocketDebuggerUrl"])
        await asyncio.sleep(0.2)
    raise RuntimeError("Chromium's DevTools endpoint never came up")


async def evaluate(ws: aiohttp.ClientWebSocketResponse, expression: str, ident: int) -> Any:
    """Evaluate ``expression`` in the page over DevTools; its value (JSON-able)."""
    await ws.send_json(
        {
            "id": ident,
            "method": "Runtime.evaluate",
            "params": {"expression": expression, "returnByValue": True},
        }
    )
    while True:
        message = await ws.receive_json(timeout=10)
        if message.get("id") == ident:
            return message["result"]["result"].get("value")
