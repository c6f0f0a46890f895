"""Run the real ``relaycast serve`` command as a child process on 127.0.0.1."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

RELAYCAST = [sys.executable, "-m", "control_api.cli"]
_LISTEN = re.compile(r"listening http (http://\S+)")
_RTMP = re.compile(r"listening rtmp (rtmp://\S+)")
_RTMPS = re.compile(r"listening rtmps (rtmps://\S+)")
_SRT = re.compile(r"listening srt (srt://\S+)")
_STAMP = re.compile(r"^(\S+ \S+) INFO relaycast: (stopping|stopped)$")
_KEY = re.compile(r"^\s+(rk_\S+)\s*$", re.M)


@dataclass
class ServerProcess:
    proc: subprocess.Popen[str]
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    base: str = ""

    @property
    def rtmp_url(self) -> str | None:
        """``rtmp://HOST:PORT/APP`` as logged: the real port even with ``--rtmp-port 0``."""
        match = _RTMP.search("".join(self.stderr))
        return match.group(1) if match else None

    @property
    def rtmps_url(self) -> str | None:
        """``rtmps://HOST:PORT/APP`` when RTMPS is enabled, else None."""
        match = _RTMPS.search("".join(self.stderr))
        return match.group(1) if match else None

    @property
    def srt_url(self) -> str | None:
        """``srt://HOST:PORT`` as logged: the real port even with ``--srt-port 0``."""
        match = _SRT.search("".join(self.stderr))
        return match.group(1) if match else None

    def log(self) -> str:
        """Everything the server wrote to stderr so far."""
        return "".join(self.stderr)

    @property
    def bootstrap_key(self) -> str | None:
        match = _KEY.search("".join(self.stdout))
        return match.group(1) if match else None

    def shutdown_seconds(self) -> float:
        """From the server's own log: "stopping" to "stopped" (load on the machine aside)."""
        stamps = {}
        for line in self.stderr:
            match = _STAMP.match(line)
            if match and match.group(2) in ("stopping", "stopped"):
                stamps[match.group(2)] = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
        assert set(stamps) == {"stopping", "stopped"}, "".join(self.stderr)[-2000:]
        return (stamps["stopped"] - stamps["stopping"]).total_seconds()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> float:
        """Signal it and return how long it took to exit."""
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return time.monotonic() - started


def _pump(stream: object, sink: list[str]) -> None:
    for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
        sink.append(line)


_PRINTED_KEY = "printed the bootstrap admin API key"


def _wait_for(done: Callable[[], bool], deadline: float) -> None:
    while not done() and time.monotonic() < deadline:
        time.sleep(0.01)


def start_server(
    data_dir: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 20.0
) -> ServerProcess:
    env = env or {}
    for flag, var in (
        ("--rtmp-port", "RELAYCAST_RTMP__PORT"),
        ("--srt-port", "RELAYCAST_SRT__PORT"),
    ):
        # Ephemeral ingest ports unless a test asks for one: a bench run or another
        # server holding 1935/9000 must not make unrelated tests fail.
        if flag not in args and var not in env:
            args = (*args, flag, "0")
    cmd = [
        *RELAYCAST,
        "serve",
        "--data-dir",
        str(data_dir),
        "--host",
        "127.0.0.1",
        "--http-port",
        "0",
        *args,
    ]
    full_env = {**os.environ, **env}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env
    )
    server = ServerProcess(proc)
    threading.Thread(target=_pump, args=(proc.stdout, server.stdout), daemon=True).start()
    threading.Thread(target=_pump, args=(proc.stderr, server.stderr), daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        err = "".join(server.stderr)
        match = _LISTEN.search(err)
        if match:
            server.base = match.group(1)
            if _PRINTED_KEY in err:  # stdout has its own reader thread: let it catch up
                _wait_for(lambda: server.bootstrap_key is not None, deadline)
            return server
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    server.stop()
    raise RuntimeError("relaycast serve did not start:\n" + "".join(server.stderr))
