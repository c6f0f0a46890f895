"""A real aiohttp webhook receiver on 127.0.0.1, run in its own thread and event loop.

Its own thread so that synchronous interop tests (the server is a child process) and
asynchronous API tests (the server shares the test's loop) use the same receiver, and
a receiver told to hang cannot stall the loop of the server under test.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

HANG = -1
"""A reply that never comes: the handler waits until the receiver stops."""


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Records every POST; ``reply(n)`` gives the status for the n-th request (1-based)."""

    def __init__(self, reply: Callable[[int], int] = lambda _n: 204) -> None:
        self.reply = reply
        self.requests: list[Received] = []
        self.started_requests = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.url = ""

    def __enter__(self) -> Receiver:
        self._thread.start()
        port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> int:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return int(self._runner.addresses[0][1])

    async def _stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        with self._lock:
            self.started_requests += 1
            n = self.started_requests
        status = self.reply(n)
        if status == HANG:
            await self._release.wait()
            return web.Response(status=503)
        body = await request.read()
        with self._lock:
            self.requests.append(Received(dict(request.headers), body, time.monotonic()))
        return web.Response(status=status)

    def received(self) -> list[Received]:
        with self._lock:
            return list(self.requests)

    def events(self) -> list[dict[str, Any]]:
        return [r.json for r in self.received()]
