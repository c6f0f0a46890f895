"""Headless Chromium as the tests and the benchmarks start it (Debian's package).

Without the background-networking flags Chromium tries to reach Google's hosts at every
start and this machine's closed network refuses them, many at a time.

The tests drive it with Playwright for Python, pointed at Debian's binary: Playwright's
own browser download (``playwright install``) is never used. The benchmarks keep a bare
DevTools connection (``devtools_page``) so that they need no test extras.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Iterator
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


def chromium() -> str:
    """Debian's Chromium; missing fails under CI (never a silent skip), skips locally."""
    from tests.conftest import require_program  # pytest only where a test runs

    return require_program("chromium")


def _require_playwright() -> None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        import pytest

        message = "playwright is not installed (pip install -e '.[test]')"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@contextlib.asynccontextmanager
async def async_browser(flags: list[str] = PLAYER_FLAGS) -> AsyncIterator[Any]:
    """Playwright's async API on Debian's Chromium, headless, for the asyncio tests."""
    _require_playwright()
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        browser = await driver.chromium.launch(
            executable_path=chromium(), args=flags, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


@contextlib.contextmanager
def sync_browser(flags: list[str] = PLAYER_FLAGS) -> Iterator[Any]:
    """The same with Playwright's sync API (for tests that run no event loop)."""
    _require_playwright()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium(), args=flags, headless=True)
        try:
            yield browser
        finally:
            browser.close()
