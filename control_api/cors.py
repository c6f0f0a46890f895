"""CORS for restricted keys only: browsers may hold those, never full keys.

A preflight carries no credentials, so it is answered for any origin that some
active restricted key lists; the real request then gets CORS headers only when
*its* key lists the origin, which is what actually lets the browser read it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from control_api.store import Store

ALLOW_METHODS = "GET, POST, PATCH, DELETE, HEAD, OPTIONS"
ALLOW_HEADERS = (
    "Authorization, Content-Type, Upload-Length, Upload-Offset, Upload-Metadata, "
    "Upload-Checksum, Upload-Defer-Length, Upload-Concat, Tus-Resumable, X-HTTP-Method-Override"
)
EXPOSE_HEADERS = (
    "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After, Location, "
    "Upload-Offset, Upload-Length, Upload-Metadata, Upload-Expires, Tus-Resumable, "
    "Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm, Relaycast-Media-Id"
)
_TTL = 5.0


class OriginCache:
    """The union of restricted keys' origins, refreshed every few seconds."""

    def __init__(self, load: Callable[[], Awaitable[set[str]]]) -> None:
        self._load = load
        self._origins: set[str] = set()
        self._loaded_at = float("-inf")

    @classmethod
    def for_store(cls, store: Store) -> OriginCache:
        async def load() -> set[str]:
            keys = await store.api_keys.list()
            return {o for k in keys if k.access == "restricted" for o in k.cors_origins}

        return cls(load)

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

    async def allows(self, origin: str) -> bool:
        now = time.monotonic()
        if now - self._loaded_at > _TTL:
            self._origins = await self._load()
            self._loaded_at = now
        return "*" in self._origins or origin.lower() in self._origins


def origin_allowed(origins: tuple[str, ...], origin: str) -> bool:
    return "*" in origins or origin.lower() in origins


def response_headers(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": EXPOSE_HEADERS,
        "Vary": "Origin",
    }


def preflight_headers(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": ALLOW_METHODS,
        "Access-Control-Allow-Headers": ALLOW_HEADERS,
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }
