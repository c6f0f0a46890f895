"""Connection limits in front of aiohttp: a request-head deadline and a per-address cap.

aiohttp reads a request head for as long as the client cares to send it (older
releases never time out a connection that has not finished its first request), and
accepts every connection it is offered. A few thousand idle or trickling sockets
from one host then hold every file descriptor the process has, and the API, HLS
playback and new RTMP publishers all fail together.

:class:`ConnectionGuard` wraps the protocol factory handed to ``loop.create_server``:

* a connection whose first request head has not ended ``header_timeout`` seconds
  after it was accepted is closed. Later heads are bounded by aiohttp's keep-alive
  timer, which the composition root sets to the same value: it closes a connection
  whose handler still waits for its next request that long after the previous
  response, whether the client sent nothing or half a head;
* one IP address may hold at most ``max_per_address`` connections at once (loopback
  included: a local proxy is one address too, so the limit is a setting); the next
  one is answered 503 and closed before aiohttp sees it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any, cast

from aiohttp import web
from yarl import URL

from control_api.problems import Problem

log = logging.getLogger("relaycast.http")
ProtocolWrapper = Callable[[Callable[[], asyncio.Protocol]], Callable[[], asyncio.Protocol]]
"""Wraps aiohttp's protocol factory between the guard and aiohttp."""

# The blank line that ends a head, whatever line endings the client uses: any head a
# parser accepts contains one of these, so the deadline is never left armed by mistake.
_HEAD_ENDS = (b"\n\r\n", b"\n\n")


def _refusal(limit: int) -> bytes:
    problem = Problem(503, f"more than {limit} concurrent connections from this address")
    body = json.dumps(problem.body()).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Retry-After: 5\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


class ConnectionGuard:
    """Counts connections per address and makes the guarded protocols."""

    def __init__(self, header_timeout: float, max_per_address: int) -> None:
        self.header_timeout = header_timeout
        self.max_per_address = max_per_address
        self.open: Counter[str] = Counter()
        self._refusing: set[str] = set()
        self._refusal = _refusal(max_per_address)

    def factory(self, inner: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """What ``loop.create_server`` gets instead of ``inner`` (aiohttp's server)."""
        return lambda: _GuardedProtocol(self, inner)

    def admit(self, address: str, transport: asyncio.Transport) -> bool:
        if self.open[address] >= self.max_per_address:
            if address not in self._refusing:  # one line per episode, not per socket
                self._refusing.add(address)
                log.warning(
                    "refusing HTTP connections from %s: %d open, the limit "
                    "(http.max_connections_per_address)",
                    address,
                    self.open[address],
                )
            transport.write(self._refusal)
            transport.close()
            return False
        self.open[address] += 1
        return True

    def release(self, address: str) -> None:
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]
        if self.open[address] < self.max_per_address:
            self._refusing.discard(address)


class _GuardedProtocol(asyncio.Protocol):
    """Passes everything to aiohttp's protocol once admitted; owns the head deadline."""

    def __init__(self, guard: ConnectionGuard, inner: Callable[[], asyncio.Protocol]) -> None:
        self._guard = guard
        self._make_inner = inner
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._address = ""
        self._deadline: asyncio.TimerHandle | None = None
        self._tail = b""

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, base)  # uvloop's does not subclass asyncio's
        peer: Any = transport.get_extra_info("peername")
        self._address = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        if not self._guard.admit(self._address, transport):
            return
        self._transport = transport
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self._guard.header_timeout, self._head_too_slow)
        self._inner = self._make_inner()
        self._inner.connection_made(transport)

    def _head_too_slow(self) -> None:
        self._deadline = None
        log.debug(
            "closing HTTP connection from %s: no complete request head within %g s",
            self._address,
            self._guard.header_timeout,
        )
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        if self._inner is None:
            return
        if self._deadline is not None:
            seen = self._tail + data
            if any(end in seen for end in _HEAD_ENDS):
                self._deadline.cancel()
                self._deadline = None
            else:
                self._tail = seen[-2:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._inner is None:
            return
        self._guard.release(self._address)
        inner, self._inner, self._transport = self._inner, None, None
        inner.connection_lost(exc)


class GuardedSite(web.BaseSite):
    """A TCP listener for an aiohttp runner whose connections pass the guard first."""

    __slots__ = ("_guard", "_host", "_port", "_reuse_port", "_wrap")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        guard: ConnectionGuard,
        reuse_port: bool = False,
        wrap: ProtocolWrapper | None = None,
    ) -> None:
        super().__init__(runner)
        self._host, self._port, self._guard = host, port, guard
        self._reuse_port = reuse_port
        self._wrap = wrap

    @property
    def name(self) -> str:
        return str(URL.build(scheme="http", host=self._host, port=self._port))

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        inner: Callable[[], asyncio.Protocol] = server
        if self._wrap is not None:  # e.g. the LL-HLS fast path (server.hls.fast)
            inner = self._wrap(inner)
        self._server = await asyncio.get_running_loop().create_server(
            self._guard.factory(inner),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_port=self._reuse_port or None,
        )
