"""The servers under test, as child processes on 127.0.0.1 only.

* :class:`Relaycast`: the real ``relaycast serve`` command (``python -m control_api.cli
  serve``) with a fresh data dir and port 0 everywhere; the ports and the bootstrap API
  key are read from its output, and publish keys are created through the HTTP API.
* :class:`RelaycastIngest`: relaycast's RTMP ingest plane alone (``python -m
  bench.plane``: the same ingest/bus classes, no database, no HLS), for the RTMP ingest
  figures; ``relaycast serve`` also packages every live stream as HLS.
* :class:`NginxRtmp`: nginx with Debian's RTMP module, from a config written into a
  temp dir (never the system config or port 80): one process (``master_process off``),
  so the PID we measure is the one doing the work; ``hls=True`` adds ``hls on`` (to
  compare with ``relaycast serve``, which packages HLS too).

Both expose ``pid``, ``rtmp_url(key)`` and ``stream_keys(n)``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

NGINX_RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
_RTMP_LINE = re.compile(r"listening rtmp rtmp://([\d.]+):(\d+)/(\S+)")
_HTTP_LINE = re.compile(r"listening http (http://\S+)")
_KEY = re.compile(r"^\s+(rk_\S+)\s*$", re.M)

BENCH_PLAN = {
    "max_clients": 100000,
    "max_resolution": {"width": 7680, "height": 4320},
    "max_frame_rate": 300,
    "max_bitrate": 100_000_000_000,
}
BENCH_ENV = {
    # creating 200 streams must not trip the API's per-key rate limit
    "RELAYCAST_API__RATE_LIMIT_PER_MINUTE": "1000000",
    # plan enforcement stays on (it is part of the hot path we measure), but with a
    # ceiling that scenario B's flat-out publisher (hundreds of MB/s) stays under
    "RELAYCAST_PLANS__BENCH": json.dumps(BENCH_PLAN),
    "RELAYCAST_DEFAULT_PLAN": "bench",
}


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (for programs that cannot take port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pump(stream: Any, sink: list[str]) -> None:
    for line in iter(stream.readline, ""):
        sink.append(line)


def _stop(proc: subprocess.Popen[str], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _worker_pid(proc: subprocess.Popen[str], wrapped: bool) -> int:
    """The process doing the work: the Python interpreter itself, unless wrapped (a
    profiler such as py-spy); then the wrapper's only child."""
    if not wrapped:
        return proc.pid
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text()
    return int(children.split()[0])


def _stop_wrapped(proc: subprocess.Popen[str], wrapped: bool) -> None:
    if wrapped and proc.poll() is None:
        # stop the server itself; the wrapper (a profiler) then writes its output
        with contextlib.suppress(OSError, ValueError, IndexError):
            os.kill(_worker_pid(proc, True), signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)
    _stop(proc)


class Relaycast:
    """``relaycast serve`` in a temp data dir; publish keys come from its HTTP API."""

    name = "relaycast"

    def __init__(self, extra_env: dict[str, str] | None = None, wrapper: list[str] | None = None):
        self._tmp = tempfile.TemporaryDirectory(prefix="relaycast-bench-")
        self.data_dir = Path(self._tmp.name)
        self.extra_env = extra_env or {}
        self.wrapper = wrapper or []
        self.proc: subprocess.Popen[str] | None = None
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.rtmp_port = 0
        self.app = "live"
        self.http_base = ""
        self.api_key = ""
        self._keys: list[str] = []
        self.extra_args: list[str] = []
        """Appended to the command line (a later flag wins over the port-0 defaults)."""

    def start(self, timeout: float = 30.0) -> Relaycast:
        cmd = [
            *self.wrapper,
            sys.executable,
            "-m",
            "control_api.cli",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--host",
            "127.0.0.1",
            "--http-port",
            "0",
            "--rtmp-port",
            "0",
            *(["--srt-port", "0"] if "RELAYCAST_SRT__PORT" not in self.extra_env else []),
            *self.extra_args,
        ]
        env = {**os.environ, **BENCH_ENV, **self.extra_env}
        root = Path(__file__).resolve().parent.parent
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=root
        )
        for stream, sink in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr)):
            threading.Thread(target=_pump, args=(stream, sink), daemon=True).start()
        deadline = time.monotonic() + timeout * (4 if self.wrapper else 1)  # profilers are slow
        while time.monotonic() < deadline:
            log = "".join(self.stderr)
            rtmp, http = _RTMP_LINE.search(log), _HTTP_LINE.search(log)
            if rtmp and http:
                self.rtmp_port, self.app, self.http_base = int(rtmp[2]), rtmp[3], http[1]
                key = _KEY.search("".join(self.stdout))
                if key is None and not self.api_key:  # a second node of a database: given
                    raise RuntimeError("relaycast printed no bootstrap key")
                self.api_key = key[1] if key is not None else self.api_key
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("relaycast serve did not start:\n" + "".join(self.stderr)[-3000:])

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return _worker_pid(self.proc, bool(self.wrapper))

    def api(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.http_base + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text else None

    def stream_keys(self, count: int) -> list[str]:
        """``count`` publish keys; streams are created on demand and reused across runs."""
        while len(self._keys) < count:
            stream = self.api("POST", "/v1/live-streams", {"name": f"bench-{len(self._keys)}"})
            self._keys.append(stream["ingest"]["streamKey"])
        return self._keys[:count]

    def rtmp_url(self, key: str) -> str:
        return f"rtmp://127.0.0.1:{self.rtmp_port}/{self.app}/{key}"

    def stop(self) -> None:
        if self.proc is not None:
            _stop_wrapped(self.proc, bool(self.wrapper))
        self._tmp.cleanup()


class RelaycastIngest:
    """``python -m bench.plane``: the ingest plane as its own process; any key works."""

    name = "relaycast-ingest"

    def __init__(
        self,
        wrapper: list[str] | None = None,
        floor: bool = False,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.floor = floor
        if floor:
            self.name = "python-floor"
        self.extra_env = extra_env or {}
        self.wrapper = wrapper or []
        self.proc: subprocess.Popen[str] | None = None
        self.stderr: list[str] = []
        self.rtmp_port = 0

    def start(self, timeout: float = 20.0) -> RelaycastIngest:
        root = Path(__file__).resolve().parent.parent
        self.proc = subprocess.Popen(
            [*self.wrapper, sys.executable, "-m", "bench.plane", *(["--floor"] * self.floor)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=root,
            env={**os.environ, **self.extra_env},
        )
        threading.Thread(target=_pump, args=(self.proc.stderr, self.stderr), daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = _RTMP_LINE.search("".join(self.stderr))
            if match:
                self.rtmp_port = int(match[2])
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("bench.plane did not start:\n" + "".join(self.stderr)[-3000:])

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return _worker_pid(self.proc, bool(self.wrapper))

    def stream_keys(self, count: int) -> list[str]:
        return [f"k{i}" for i in range(count)]

    def rtmp_url(self, key: str) -> str:
        return f"rtmp://127.0.0.1:{self.rtmp_port}/live/{key}"

    def stop(self) -> None:
        if self.proc is not None:
            _stop_wrapped(self.proc, bool(self.wrapper))


NGINX_HEAD = """\
load_module {module};
daemon off;
master_process off;
worker_processes 1;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
"""
"""What every benchmark nginx shares: the RTMP module, one foreground process."""

NGINX_CONF = (
    NGINX_HEAD
    + """rtmp {{
    server {{
        listen 127.0.0.1:{port};
        application live {{
            live on;{hls}
        }}
    }}
}}
"""
)


def run_nginx(conf: Path, port: int, timeout: float = 10.0) -> subprocess.Popen[str]:
    """Start nginx on ``conf`` and wait until ``port`` accepts; its error log if not."""
    proc = subprocess.Popen(
        ["nginx", "-c", str(conf), "-p", str(conf.parent)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.05)
    error_log = conf.parent / "error.log"
    log = error_log.read_text() if error_log.exists() else ""
    proc.kill()
    proc.wait()
    raise RuntimeError(f"nginx-rtmp did not start:\n{log[-3000:]}")


class NginxRtmp:
    """nginx + libnginx-mod-rtmp, one process, RTMP on a free loopback port."""

    name = "nginx-rtmp"

    def __init__(self, hls: bool = False) -> None:
        self.hls = hls
        if hls:
            self.name = "nginx-rtmp-hls"
        self._tmp = tempfile.TemporaryDirectory(prefix="nginx-rtmp-bench-")
        self.dir = Path(self._tmp.name)
        self.proc: subprocess.Popen[str] | None = None
        self.rtmp_port = 0

    def start(self, timeout: float = 10.0) -> NginxRtmp:
        if not Path(NGINX_RTMP_MODULE).exists():
            raise RuntimeError(f"{NGINX_RTMP_MODULE} missing: apt-get install libnginx-mod-rtmp")
        self.rtmp_port = free_port()
        conf = self.dir / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                module=NGINX_RTMP_MODULE, dir=self.dir, port=self.rtmp_port, hls=self._hls()
            )
        )
        self.proc = run_nginx(conf, self.rtmp_port, timeout)
        return self

    def _hls(self) -> str:
        """2 s fragments, 6-fragment playlists: what relaycast's HLS defaults produce."""
        if not self.hls:
            return ""
        (self.dir / "hls").mkdir(exist_ok=True)
        return (
            f"\n            hls on; hls_path {self.dir}/hls; hls_fragment 2s;"
            " hls_playlist_length 12s; hls_cleanup on;"
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stream_keys(self, count: int) -> list[str]:
        return [f"bench-{i}" for i in range(count)]

    def rtmp_url(self, key: str) -> str:
        return f"rtmp://127.0.0.1:{self.rtmp_port}/live/{key}"

    def error_log(self) -> str:
        path = self.dir / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
        self._tmp.cleanup()
