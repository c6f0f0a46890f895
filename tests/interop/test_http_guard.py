"""Slow and piled-up HTTP connections against a real ``relaycast serve`` (issue #13, item 13).

Real sockets: a request head trickled a line at a time (slowloris) is closed once
``http.header_timeout`` has passed since connecting, and so is a head left half sent
after a response on a keep-alive connection; idle sockets beyond
``http.max_connections_per_address`` from one address are answered 503 and closed,
while a client from another loopback address (127.0.0.2) is served normally. At start
the server raises its soft open-file limit to the hard limit and logs the value.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.serverproc import ServerProcess, start_server

pytestmark = [pytest.mark.interop, pytest.mark.serial]

HEADER_TIMEOUT = 1.0
CAP = 8


@contextlib.contextmanager
def _server(data_dir: Path, **env: str) -> Iterator[ServerProcess]:
    server = start_server(data_dir, env=env)
    try:
        yield server
    finally:
        server.stop()


def _address(server: ServerProcess) -> tuple[str, int]:
    parts = urlsplit(server.base)
    return parts.hostname or "", parts.port or 80


def _connect(server: ServerProcess, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.settimeout(5)
    sock.connect(_address(server))
    return sock


def _closed_after(sock: socket.socket, limit: float, trickle: bytes = b"") -> float | None:
    """Seconds until the server closes ``sock`` (sending ``trickle`` every 0.2 s)."""
    started = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - started < limit:
        try:
            if trickle:
                sock.sendall(trickle)
            if not sock.recv(65536):
                return time.monotonic() - started
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - started
    return None


def _get(sock: socket.socket, path: str = "/healthz") -> bytes:
    """One keep-alive request; the whole response (its length is in Content-Length)."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: relaycast\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")).split(
            b":"
        )[1]
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head


def test_slow_request_heads_are_closed_after_the_header_timeout(tmp_path: Path) -> None:
    with _server(tmp_path, RELAYCAST_HTTP__HEADER_TIMEOUT=str(HEADER_TIMEOUT)) as server:
        slowloris = _connect(server)
        slowloris.sendall(b"GET /healthz HTTP/1.1\r\nHost: relaycast\r\n")
        took = _closed_after(slowloris, 10 * HEADER_TIMEOUT, trickle=b"X-Slow: 1\r\n")
        assert took is not None, "a trickled request head was held open"
        assert HEADER_TIMEOUT * 0.8 <= took < HEADER_TIMEOUT + 2.0, took

        silent = _connect(server)
        took = _closed_after(silent, 10 * HEADER_TIMEOUT)
        assert took is not None and took < HEADER_TIMEOUT + 2.0, took

        keepalive = _connect(server)
        assert _get(keepalive).startswith(b"HTTP/1.1 200")
        keepalive.sendall(b"GET /healthz HTTP/1.1\r\n")  # the next head, never finished
        took = _closed_after(keepalive, 10 * HEADER_TIMEOUT)
        assert took is not None and took < HEADER_TIMEOUT + 2.0, took

        # a client that sends its head in time is served, however long it then idles
        prompt = _connect(server)
        assert _get(prompt).startswith(b"HTTP/1.1 200")
        for sock in (slowloris, silent, keepalive, prompt):
            sock.close()


def test_connections_beyond_the_per_address_cap_are_refused(tmp_path: Path) -> None:
    env = {
        "RELAYCAST_HTTP__HEADER_TIMEOUT": "60",
        "RELAYCAST_HTTP__MAX_CONNECTIONS_PER_ADDRESS": str(CAP),
    }
    with _server(tmp_path, **env) as server:
        idle = [_connect(server) for _ in range(CAP)]
        extra = _connect(server)
        reply = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := extra.recv(65536):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 503"), reply
        assert b"application/problem+json" in reply and b"concurrent connections" in reply

        fresh = _connect(server, source="127.0.0.2")
        assert _get(fresh).startswith(b"HTTP/1.1 200")
        fresh.close()

        idle.pop().close()
        deadline = time.monotonic() + 5
        while True:  # the server notices the close, then admits one more from 127.0.0.1
            again = _connect(server)
            try:
                assert _get(again).startswith(b"HTTP/1.1 200")
                break
            except (ConnectionResetError, AssertionError, ValueError, StopIteration):
                assert time.monotonic() < deadline, "a freed slot was never reused"
                time.sleep(0.1)
            finally:
                again.close()
        for sock in idle:
            sock.close()
        assert server.log().count("refusing HTTP connections from 127.0.0.1") == 1, server.log()


def test_the_open_file_limit_is_raised_at_start_and_logged(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(soft, 512)
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))  # the child inherits it
    try:
        server = start_server(tmp_path)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        expected = hard if hard != resource.RLIM_INFINITY else 1 << 20
        assert f"open-file limit {expected} (raised from {low})" in server.log(), server.log()
        with open(f"/proc/{server.proc.pid}/limits") as fh:
            line = next(ln for ln in fh if ln.startswith("Max open files"))
        assert int(line.split()[3]) == expected, line
    finally:
        server.stop()


def test_a_json_body_sent_too_slowly_gets_408(tmp_path: Path) -> None:
    """A client that sends a head and then trickles (or withholds) its JSON body used to
    hold its request, and the handler waiting for it, forever."""
    with _server(tmp_path, RELAYCAST_HTTP__BODY_TIMEOUT="1") as server:
        sock = _connect(server)
        head = (
            "POST /v1/live-streams HTTP/1.1\r\nHost: relaycast\r\n"
            f"Authorization: Bearer {server.bootstrap_key}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"name": ')
        started = time.monotonic()
        sock.settimeout(10)
        reply = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while not reply.endswith(b"}") and (chunk := sock.recv(65536)):
                reply += chunk
        took = time.monotonic() - started  # (aiohttp then lingers, bounded, for the rest)
        assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
        assert b"application/problem+json" in reply and b"http.body_timeout" in reply
        # the unread rest of the body must not be parsed as a next request
        assert b"Connection: close" in reply
        assert took < 4, took
        sock.close()
