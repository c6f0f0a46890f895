"""A real control-API server on 127.0.0.1 per test, over a fresh SQLite database."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from control_api.app import build_app
from control_api.bootstrap import bootstrap
from control_api.settings import Settings, load_settings
from control_api.store import Store
from control_api.store.directory import StoreDirectory
from control_api.urls import Endpoints
from server.bus import Registry
from server.ingest.manager import IngestManager


@dataclass
class Reply:
    status: int
    headers: Any
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class Api:
    base: str
    http: aiohttp.ClientSession
    admin_key: str
    store: Store
    settings: Settings
    http_app: web.Application

    async def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = "admin",
        body: Any = None,
        raw: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        hdrs = dict(headers or {})
        if key is not None:
            hdrs.setdefault("Authorization", f"Bearer {self.admin_key if key == 'admin' else key}")
        kwargs: dict[str, Any] = {"headers": hdrs}
        if body is not None:
            kwargs["json"] = body
        elif raw is not None:
            kwargs["data"] = raw
        async with self.http.request(method, self.base + path, **kwargs) as resp:
            return Reply(resp.status, resp.headers, await resp.text())

    async def new_key(self, access: str = "full", env: str | None = None, **kw: Any) -> str:
        if env is None:
            reply = await self.call(
                "POST", "/v1/api-keys", body={"name": "k", "access": access, **kw}
            )
            assert reply.status == 201, reply.text
            return str(reply.json["key"])
        environment, _ = await self.store.environments.ensure(env)
        _, secret = await self.store.api_keys.create(
            environment.id, "k", access, kw.get("corsOrigins", [])
        )
        return secret

    async def new_stream(self, key: str | None = "admin", **fields: Any) -> dict[str, Any]:
        reply = await self.call("POST", "/v1/live-streams", key=key, body={"name": "s", **fields})
        assert reply.status == 201, reply.text
        return dict(reply.json)


ApiFactory = Callable[..., Awaitable[Api]]


@pytest.fixture
async def make_api(tmp_path: Path) -> AsyncIterator[ApiFactory]:
    cleanups: list[Callable[[], Awaitable[None]]] = []

    async def start(**overrides: Any) -> Api:
        server = {"data_dir": str(tmp_path), "host": "127.0.0.1", "public_host": "127.0.0.1"}
        settings = load_settings(environ={}, overrides={"server": server, **overrides})
        store = await Store.open(settings.database_url)
        secret = await bootstrap(store)
        assert secret is not None
        endpoints = Endpoints(
            "127.0.0.1", 0, settings.rtmp.port, settings.srt.port, settings.rtmp.app
        )
        ingest = IngestManager(StoreDirectory(store.sessions), Registry(), settings.ingest)
        app = build_app(settings, store, endpoints, await store.token_signing_key(), ingest)
        # as `relaycast serve` runs it: a handler still open at the end is cut after 2 s
        # (aiohttp's default waits 60 s for it)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        endpoints.http_port = runner.addresses[0][1]
        http = aiohttp.ClientSession()

        async def stop() -> None:
            await http.close()
            await runner.cleanup()
            await store.close()

        cleanups.append(stop)
        return Api(endpoints.http_base, http, secret, store, settings, app)

    yield start
    for stop in cleanups:
        await stop()


@pytest.fixture
async def api(make_api: ApiFactory) -> Api:
    return await make_api(api={"rate_limit_per_minute": 100_000})
