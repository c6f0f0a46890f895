"""From TCP accept to publish over real sockets: how long a connection may take to
publish, what it may hold meanwhile, how quickly a pipelined publish is answered and
how repeated refusals from one address are slowed down."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path

import pytest

from server.protocols.rtmp import amf0, commands
from server.protocols.rtmp.chunk import ChunkReader, Message, encode_header, encode_message
from tests.interop.conftest import Relaycast, StartRelaycast, wait_for
from tests.interop.rawpeers import dropped_within, rtmp_handshake

pytestmark = pytest.mark.interop

HANDSHAKE_TIMEOUT = 1.5
IDLE_TIMEOUT = 3.0
REFUSAL_DELAY_MAX = 0.5
COMMAND, VIDEO = 20, 9


@pytest.fixture(scope="module")
def relaycast_env() -> dict[str, str]:
    return {
        "RELAYCAST_RTMP__HANDSHAKE_TIMEOUT": str(HANDSHAKE_TIMEOUT),
        "RELAYCAST_RTMP__IDLE_TIMEOUT": str(IDLE_TIMEOUT),
        "RELAYCAST_RTMP__REFUSAL_DELAY_MAX": str(REFUSAL_DELAY_MAX),
    }


# ---------------------------------------------------------------- a raw client


def _connect(relaycast: Relaycast) -> socket.socket:
    return socket.create_connection(("127.0.0.1", relaycast.rtmp_port), timeout=10)


def _command(
    name: str, tid: float, obj: amf0.AmfValue, *args: amf0.AmfValue, msid: int = 0
) -> bytes:
    return encode_message(3, COMMAND, msid, 0, commands.encode_command(name, tid, obj, *args), 128)


def _connect_command() -> bytes:
    return _command("connect", 1, {"app": "live", "tcUrl": "rtmp://127.0.0.1/live"})


def _publish_commands(key: str) -> bytes:
    """createStream and publish on stream 1, as one block of bytes."""
    return _command("createStream", 2, None) + _command("publish", 3, None, key, "live", msid=1)


def _publish_status(sock: socket.socket, timeout: float) -> str | None:
    """The code of the first onStatus the server sends; None if it hangs up first."""
    reader = ChunkReader(
        max_message_size=1 << 20,
        max_chunk_size=1 << 20,
        max_chunk_streams=64,
        max_partial_bytes=4 << 20,
    )
    sock.settimeout(timeout)
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return None
        if not data:
            return None
        messages: list[Message] = []
        reader.feed(data, messages)
        for msg in messages:
            if msg.type_id == COMMAND:
                cmd = commands.parse_command(msg.payload)
                info = cmd.arg(0)
                if cmd.name == "onStatus" and isinstance(info, dict):
                    return str(info["code"])


# ---------------------------------------------------------------- the tests


def test_pipelined_connect_create_stream_publish_is_answered_at_once(
    relaycast: Relaycast,
) -> None:
    """connect, createStream and publish in one write: the publish arrives while the
    connect is being accepted, and must not wait for a timer to be noticed."""
    stream = relaycast.api.create_stream("pipelined")
    with _connect(relaycast) as sock:
        rtmp_handshake(sock)
        started = time.monotonic()
        sock.sendall(_connect_command() + _publish_commands(stream["ingest"]["streamKey"]))
        code = _publish_status(sock, timeout=HANDSHAKE_TIMEOUT + 2)
        took = time.monotonic() - started
    assert code == commands.PUBLISH_START
    assert took < 0.5, took


def test_a_connection_that_never_publishes_is_dropped_after_handshake_timeout(
    relaycast: Relaycast,
) -> None:
    """One byte every 0.3 s keeps the idle timer happy; the handshake timeout still
    runs until a publish is accepted, so such a connection cannot hold a slot."""
    with _connect(relaycast) as sock:
        opened = time.monotonic()
        rtmp_handshake(sock)
        sock.sendall(_connect_command())
        # A command message of 200 bytes, announced and then trickled byte by byte.
        sock.sendall(encode_header(0, 4, 0, 200, COMMAND, 0))
        dropped = None
        for _ in range(20):
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(b"\x02")
            dropped = dropped_within(sock, 0.3)
            if dropped is not None:
                break
        took = time.monotonic() - opened
    assert dropped is not None, "still connected after 6 s"
    assert took < HANDSHAKE_TIMEOUT + 0.8, took
    wait_for(relaycast.log, lambda log: "not published within" in log, 3, "the drop logged")


def test_refusals_from_one_address_are_slowed_but_a_valid_key_is_not(
    relaycast: Relaycast,
) -> None:
    stream = relaycast.api.create_stream("neighbour")
    attempts = 8
    started = time.monotonic()
    for n in range(attempts):
        with _connect(relaycast) as sock:
            rtmp_handshake(sock)
            sock.sendall(_connect_command() + _publish_commands(f"sk_guess{n:04d}"))
            assert _publish_status(sock, timeout=5) == commands.PUBLISH_BAD_NAME
    guessing = time.monotonic() - started
    # 3 free refusals, then 0.25 s doubling up to REFUSAL_DELAY_MAX: 2.25 s in all.
    assert guessing >= 1.8, guessing

    with _connect(relaycast) as sock:
        rtmp_handshake(sock)
        started = time.monotonic()
        sock.sendall(_connect_command() + _publish_commands(stream["ingest"]["streamKey"]))
        assert _publish_status(sock, timeout=5) == commands.PUBLISH_START
        assert time.monotonic() - started < 0.5


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _hold_two_unfinished_messages(sock: socket.socket) -> None:
    """Announce two messages of 16 MiB - 1 on two chunk streams and send all but the
    last chunk of each (chunk size raised to 64 KiB first)."""
    size, chunk = 0xFFFFFF, 65536
    sock.sendall(encode_message(2, 1, 0, 0, chunk.to_bytes(4, "big"), 128))
    payload = os.urandom(chunk)
    for csid in (6, 7):
        sock.sendall(encode_header(0, csid, 0, size, VIDEO, 1) + payload)
        continuation = bytes((0xC0 | csid,)) + payload
        sock.sendall(continuation * (size // chunk - 2))


def _round(server: Relaycast, keys: list[str | None]) -> tuple[float, float, float]:
    """One connection per key (None: no connect, no publish) holding two unfinished
    messages; returns the server's RSS in MiB before, at the peak and after closing."""
    pid = server.server.proc.pid
    start = peak = _rss_mib(pid)
    sockets = []
    try:
        for key in keys:
            sock = _connect(server)
            sockets.append(sock)
            rtmp_handshake(sock)
            if key is not None:
                sock.sendall(_connect_command() + _publish_commands(key))
                assert _publish_status(sock, timeout=5) == commands.PUBLISH_START
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                _hold_two_unfinished_messages(sock)
            peak = max(peak, _rss_mib(pid))
        time.sleep(0.5)
        peak = max(peak, _rss_mib(pid))
    finally:
        for sock in sockets:
            sock.close()
    time.sleep(1.5)
    return start, peak, _rss_mib(pid)


@pytest.mark.serial
def test_unfinished_messages_before_publish_hold_little(start_relaycast: StartRelaycast) -> None:
    """30 connections that each announce 32 MiB of messages without even a connect:
    the server holds little for them, and nothing once they are gone."""
    server = start_relaycast(env={"RELAYCAST_RTMP__HANDSHAKE_TIMEOUT": "20"})
    start, peak, after = _round(server, [None] * 30)
    assert peak - start < 60, (start, peak, after)
    assert after - start < 20, (start, peak, after)


@pytest.mark.serial
def test_unfinished_messages_of_publishers_are_bounded_and_returned(
    start_relaycast: StartRelaycast,
) -> None:
    """Publishers may hold more (rtmp.max_partial_bytes each), but all of them together
    no more than rtmp.max_partial_bytes_total, and the memory is given back when they
    close."""
    total = 96
    server = start_relaycast(
        env={"RELAYCAST_RTMP__MAX_PARTIAL_BYTES_TOTAL": str(total * 1024 * 1024)}
    )
    keys = [server.api.create_stream(f"big{n}")["ingest"]["streamKey"] for n in range(8)]
    for _ in range(2):
        start, peak, after = _round(server, keys)
        assert peak - start < total + 40, (start, peak, after)
        assert after - start < 20, (start, peak, after)
