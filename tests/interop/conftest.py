"""Interop fixtures: a real ``relaycast serve`` child, its HTTP API, and peer publishers.

Everything runs on 127.0.0.1. Every child process (server, ffmpeg, gst-launch, the
PyAV publisher) has a hard time limit and is killed at the end of the test at the
latest, whatever happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from server.hls.player import hlsjs_path
from server.protocols import rtmp
from tests.conftest import require_program
from tests.serverproc import ServerProcess, start_server

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]

# Polling the API several times a second must not trip the per-key rate limit.
BASE_ENV = {"RELAYCAST_API__RATE_LIMIT_PER_MINUTE": "1000000"}


def require_gst_element(name: str) -> None:
    """Like ``require_program`` for a GStreamer element (its plugin package may be absent)."""
    inspect = require_program("gst-inspect-1.0")
    found = subprocess.run([inspect, "--exists", name], capture_output=True, timeout=30)
    if found.returncode != 0:
        message = f"GStreamer element {name} is not installed (scripts/install-peers.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def wait_for(
    fetch: Callable[[], T], ok: Callable[[T], bool], timeout: float, what: str, every: float = 0.1
) -> T:
    """Poll ``fetch`` until ``ok(value)``; fail naming ``what`` and the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if ok(value):
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}; last: {value!r}")
        time.sleep(every)


# ---------------------------------------------------------------- the HTTP API


@dataclass
class Api:
    base: str
    key: str

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                text = resp.read()
                return resp.status, json.loads(text) if text else None
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        got, doc = self.call(method, path, body)
        assert got == status, f"{method} {path} -> {got}: {doc}"
        return doc

    def create_stream(self, name: str = "interop", **fields: Any) -> dict[str, Any]:
        stream: dict[str, Any] = self.ok(
            "POST", "/v1/live-streams", {"name": name, **fields}, status=201
        )
        return stream

    def stream(self, stream_id: str) -> dict[str, Any]:
        doc: dict[str, Any] = self.ok("GET", f"/v1/live-streams/{stream_id}")
        return doc

    def health(self, stream_id: str) -> dict[str, Any]:
        doc: dict[str, Any] = self.ok("GET", f"/v1/live-streams/{stream_id}/health")
        return doc

    def sessions(self, stream_id: str) -> dict[str, Any]:
        doc: dict[str, Any] = self.ok("GET", f"/v1/live-streams/{stream_id}/sessions")
        return doc

    def state(self, stream_id: str) -> str:
        return str(self.stream(stream_id)["state"])

    def wait_state(self, stream_id: str, state: str, timeout: float = 10.0) -> dict[str, Any]:
        return wait_for(
            lambda: self.stream(stream_id),
            lambda s: s["state"] == state,
            timeout,
            f"stream {stream_id} to be {state}",
        )

    def wait_health(
        self,
        stream_id: str,
        ok: Callable[[dict[str, Any]], bool],
        timeout: float = 10.0,
        what: str = "health",
    ) -> dict[str, Any]:
        return wait_for(lambda: self.health(stream_id), ok, timeout, f"{what} of {stream_id}")

    def wait_media(self, stream_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """Health once the stream is live with video (fps and keyframe interval measured)."""

        def ready(h: dict[str, Any]) -> bool:
            ingest = h.get("ingest") or {}
            video = ingest.get("video") or {}
            return (
                h["state"] == "live"
                and video.get("keyframeInterval") is not None
                and ingest.get("audio") is not None
                and ingest.get("bitrate", 0) > 0
            )

        return self.wait_health(stream_id, ready, timeout, "measured live media")


# ---------------------------------------------------------------- the server


@dataclass
class Relaycast:
    server: ServerProcess
    api: Api
    data_dir: Path

    @property
    def rtmp_url(self) -> str:
        url = self.server.rtmp_url
        assert url, self.server.log()
        return url

    @property
    def rtmp_port(self) -> int:
        return int(self.rtmp_url.rsplit(":", 1)[1].split("/", 1)[0])

    def publish_url(self, stream: dict[str, Any] | str) -> str:
        key = stream if isinstance(stream, str) else stream["ingest"]["streamKey"]
        return f"{self.rtmp_url}/{key}"

    def log(self) -> str:
        return self.server.log()


StartRelaycast = Callable[..., Relaycast]


def launch_relaycast(
    data_dir: Path, env: dict[str, str] | None = None, key: str | None = None
) -> Relaycast:
    server = start_server(
        data_dir, "--rtmp-port", "0", "--srt-port", "0", env={**BASE_ENV, **(env or {})}
    )
    secret = key or server.bootstrap_key
    if not secret:
        server.stop()
        raise RuntimeError("no API key: pass the first start's bootstrap key")
    return Relaycast(server, Api(server.base, secret), data_dir)


@pytest.fixture
def start_relaycast(tmp_path: Path) -> Iterator[StartRelaycast]:
    """Start servers inside one test (own settings, restarts); all stopped afterwards."""
    started: list[Relaycast] = []

    def start(
        data_dir: Path | None = None, env: dict[str, str] | None = None, key: str | None = None
    ) -> Relaycast:
        running = launch_relaycast(data_dir or tmp_path / "data", env, key)
        started.append(running)
        return running

    try:
        yield start
    finally:
        for running in started:
            running.server.stop()


@pytest.fixture(scope="module")
def relaycast_env() -> dict[str, str]:
    """Settings for the module's shared server; override in a module to change them."""
    return {}


@pytest.fixture(scope="module")
def relaycast(
    tmp_path_factory: pytest.TempPathFactory, relaycast_env: dict[str, str]
) -> Iterator[Relaycast]:
    """One server shared by a module's tests (each test uses its own streams)."""
    running = launch_relaycast(tmp_path_factory.mktemp("relaycast"), relaycast_env)
    try:
        yield running
    finally:
        running.server.stop()


# ---------------------------------------------------------------- peer processes


@dataclass
class Peer:
    """A child process whose output goes to a file; killed after ``limit`` seconds."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    limit: float
    started: float = field(default_factory=time.monotonic)
    _watchdog: threading.Timer | None = None

    def __post_init__(self) -> None:
        self._watchdog = threading.Timer(self.limit, self.kill)
        self._watchdog.daemon = True
        self._watchdog.start()

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float) -> int:
        """Exit code; fails the test if the peer is still running after ``timeout``."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.name} still running after {timeout}s:\n{self.output()[-2000:]}")

    def signal(self, sig: int) -> None:
        if self.running():
            self.proc.send_signal(sig)

    def kill(self) -> None:
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGCONT)  # a stopped process must die too
                self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)

    def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        self.kill()


class Peers:
    """Starts peer processes for one test and kills whatever is left at its end."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[Peer] = []

    def start(self, name: str, cmd: list[str], limit: float = 30.0) -> Peer:
        log_path = self.directory / f"{len(self.started):02d}-{name}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
            )
        peer = Peer(name, proc, log_path, limit)
        self.started.append(peer)
        return peer

    def close(self) -> None:
        for peer in self.started:
            peer.close()


@pytest.fixture
def peers(tmp_path: Path) -> Iterator[Peers]:
    running = Peers(tmp_path)
    try:
        yield running
    finally:
        running.close()


def ffmpeg_publish(
    url: str,
    seconds: float,
    *,
    size: str = "640x360",
    fps: int = 30,
    gop: int | None = None,
    sample_rate: int = 48000,
    channels: int = 2,
    output_args: Sequence[str] = (),
) -> list[str]:
    """ffmpeg 5.1 publishing H.264/AAC to ``url`` in real time (protocols.md §7 test 8)."""
    ffmpeg = require_program("ffmpeg")
    return [
        ffmpeg,
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        "warning",
        "-re",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={size}:rate={fps}",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency=1000:sample_rate={sample_rate}",
        "-t",
        str(seconds),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-tune",
        "zerolatency",
        "-g",
        str(gop or 2 * fps),
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        "-ac",
        str(channels),
        *output_args,
        "-f",
        "flv",
        url,
    ]


def pyav_publish(url: str, *args: str) -> list[str]:
    """The PyAV publisher (bundled FFmpeg 8, Enhanced RTMP) as a child process."""
    return [sys.executable, "-m", "tests.interop.pyav_publish", url, *args]


# ---------------------------------------------------------------- a hand-driven publisher


class BareRtmpPublisher:
    """A minimal publisher on the project's sans-IO client: it connects and publishes,
    then sends only what the test asks for (nothing, by default) — an encoder that has
    authenticated but not started its media."""

    def __init__(self, url: str, key: str, timeout: float = 10.0, app: str = "live") -> None:
        host_port = url.split("://", 1)[1].split("/", 1)[0]
        host, port = host_port.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.conn = rtmp.RtmpConnection(rtmp.Role.CLIENT, now=time.monotonic())
        self.conn.start(app, url, key)
        self.events: list[rtmp.Event] = []
        self.timeout = timeout

    def _flush(self) -> None:
        out = self.conn.data_to_send()
        if out:
            self.sock.sendall(out)

    def publish(self) -> rtmp.PublishStarted | rtmp.PublishFailed | None:
        """Run until the server answers publish; None when it just hung up."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            self._flush()
            for event in self.conn.events():
                self.events.append(event)
                if isinstance(event, rtmp.PublishStarted | rtmp.PublishFailed):
                    self._flush()
                    return event
            if self.conn.closed:
                return None
            data = self.sock.recv(65536)
            self.conn.receive_data(data, time.monotonic())
            if not data:
                return None
        raise TimeoutError("no answer to publish")

    def wait_closed(self, timeout: float) -> bool:
        """True when the server closes the connection within ``timeout``."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.conn.receive_data(data, time.monotonic())
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        return False

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def hlsjs() -> Path:
    """hls.js as scripts/web.sh installs it; missing fails under CI, skips locally."""
    path = hlsjs_path()
    if not path.is_file():
        message = "hls.js is not installed (scripts/web.sh installs it from npm)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path
