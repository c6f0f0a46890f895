"""Raw peers for the hostile and admission tests: a plain socket speaking just enough
RTMP, and our sans-IO SRT caller over a real UDP socket, so a test controls every byte
and reads the exact answer the server sends."""

from __future__ import annotations

import os
import socket
import time

import pytest

from server.protocols import srt

C1 = bytes(8) + os.urandom(1528)


def read_exactly(sock: socket.socket, size: int) -> bytes:
    """Up to ``size`` bytes; fewer only when the server hung up."""
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def rtmp_handshake(sock: socket.socket) -> None:
    """A correct C0+C1, read S0+S1+S2, answer C2 (echo of S1)."""
    sock.sendall(b"\x03" + C1)
    answer = read_exactly(sock, 1 + 2 * 1536)
    assert len(answer) == 3073 and answer[0] == 3, "server hung up during the handshake"
    sock.sendall(answer[1:1537])


def dropped_within(sock: socket.socket, timeout: float) -> float | None:
    """Seconds until the server closes the connection (EOF or reset); None if it doesn't."""
    started = time.monotonic()
    sock.settimeout(0.1)
    while time.monotonic() - started < timeout:
        try:
            if not sock.recv(65536):
                return time.monotonic() - started
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - started
    return None


def srt_call(host: str, port: int, streamid: str, passphrase: str | None = None) -> srt.Event:
    """Call the listener and return its answer (Rejected or ConnectionEstablished); an
    accepted connection is shut down politely before returning."""
    conn = srt.SrtConnection.caller(time.monotonic(), streamid=streamid, passphrase=passphrase)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((host, port))
        sock.settimeout(0.05)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for datagram in conn.datagrams_to_send():
                sock.send(datagram)
            try:
                conn.receive(sock.recv(2048), time.monotonic())
            except TimeoutError:
                conn.handle_timer(time.monotonic())
            for event in conn.events():
                if isinstance(event, srt.Rejected | srt.ConnectionEstablished):
                    conn.close()
                    for datagram in conn.datagrams_to_send():
                        sock.send(datagram)
                    return event
    pytest.fail(f"no SRT answer to {streamid!r}")
