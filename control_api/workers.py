"""``relaycast serve --workers N``: N node processes on one machine, so every core works.

One process runs one asyncio loop on one core. The workers are ordinary nodes
(``control_api.nodes``) of one installation: each is a full ``relaycast serve`` named
``<node.name>-<i>``, listening on the same ports with ``SO_REUSEPORT`` (the kernel
spreads connections and SRT callers between them) and sharing PostgreSQL for state
and claims. SQLite is one process's database, so it is refused. The kernel's spread
is uneven, so the workers even out their RTMP connections among themselves
(``server.ingest.spread``) through a folder this parent makes for them.

This parent only prepares the database (migrations, the bootstrap key, once), starts
the workers, forwards SIGINT/SIGTERM and waits. A worker that dies stops the others
and the parent exits non-zero: restarting is the service manager's job (systemd),
which sees one unit.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from control_api.settings import Settings
from server.ingest.spread import Spread, create_board

log = logging.getLogger("relaycast.workers")

MAX_WORKERS = 64
_PR_SET_PDEATHSIG = 1
SPREAD_ENV = "RELAYCAST_SPREAD"
"""``<index>/<workers>/<folder>``: tells a worker it is one of several and where the
workers pass connections and publish their loads."""


def spread_from_environ(environ: dict[str, str] | None = None) -> Spread | None:
    """This worker's side of the spread, when the parent started it as one."""
    raw = (os.environ if environ is None else environ).get(SPREAD_ENV)
    if not raw:
        return None
    index, count, folder = raw.split("/", 2)
    return Spread(Path(folder), int(index), int(count))


class WorkersRefused(Exception):
    """``--workers`` cannot run with these settings; the message says why, in one line."""


def check(settings: Settings, workers: int) -> None:
    if not 1 <= workers <= MAX_WORKERS:
        raise WorkersRefused(f"--workers must be 1 to {MAX_WORKERS}")
    if settings.database_url.startswith("sqlite"):
        raise WorkersRefused(
            "--workers needs database.url on PostgreSQL: SQLite is one process's database"
        )
    ports = {"server.http_port": settings.server.http_port}
    if settings.rtmp.enabled:
        ports["rtmp.port"] = settings.rtmp.port
    if settings.rtmps.enabled:
        ports["rtmps.port"] = settings.rtmps.port
    if settings.srt.enabled:
        ports["srt.port"] = settings.srt.port
    if settings.metrics.enabled and settings.metrics.port is not None:
        ports["metrics.port"] = settings.metrics.port
    if settings.node.internal_url is not None:
        raise WorkersRefused(
            "--workers gives each worker its own internal listener: leave node.internal_url"
            " unset (set node.internal_host; node.internal_port is the first worker's)"
        )
    zero = [name for name, port in ports.items() if port == 0]
    if zero:
        raise WorkersRefused(
            f"--workers needs fixed ports ({', '.join(zero)} is 0: each worker would get its own)"
        )


def worker_names(settings: Settings, workers: int) -> list[str]:
    base = settings.node.resolved_name()[:60]
    return [f"{base}-{i}" for i in range(1, workers + 1)]


def _without_workers(argv: Sequence[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            out.append(arg)
    return out


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """A worker whose parent was killed (even with SIGKILL) stops too, never orphaned."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


async def _prepare(settings: Settings) -> None:
    """Migrate and bootstrap once, before the workers race to do it."""
    from control_api.serve import open_store

    store = await open_store(settings)
    await store.close()


class Workers:
    def __init__(self, settings: Settings, argv: Sequence[str], workers: int) -> None:
        self.settings = settings
        self.names = worker_names(settings, workers)
        self.argv = _without_workers(argv)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.stopping = False
        self.spread_dir: Path | None = None

    def _spawn(self, index: int, name: str) -> subprocess.Popen[bytes]:
        """Worker ``index`` (from 0) listens for other nodes' proxied playback on
        ``node.internal_port + index`` (any free port when it is 0): one per worker,
        since a request for a worker's stream must reach that worker."""
        cmd = [sys.executable, "-m", "control_api.cli", *self.argv, "--node-name", name]
        env = {**os.environ, "RELAYCAST_SERVER__REUSE_PORT": "true"}
        if self.spread_dir is not None:
            env[SPREAD_ENV] = f"{index}/{len(self.names)}/{self.spread_dir}"
        internal = self.settings.node.internal_port
        if internal:
            env["RELAYCAST_NODE__INTERNAL_PORT"] = str(internal + index)
        preexec = _die_with_parent if sys.platform.startswith("linux") else None
        # our own interpreter and command line, no shell
        return subprocess.Popen(cmd, env=env, preexec_fn=preexec)  # noqa: S603

    def _on_signal(self, signum: int, _: FrameType | None) -> None:
        self.stopping = True

    def run(self) -> int:
        asyncio.run(_prepare(self.settings))
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        log.info("starting %d workers: %s", len(self.names), ", ".join(self.names))
        self.spread_dir = Path(tempfile.mkdtemp(prefix="relaycast-workers-"))
        create_board(self.spread_dir, len(self.names))
        self.procs = [self._spawn(i, name) for i, name in enumerate(self.names)]
        failed = 0
        while not self.stopping:
            exited = [
                (n, p.returncode)
                for n, p in zip(self.names, self.procs, strict=True)
                if p.poll() is not None
            ]
            if exited:
                name, failed = exited[0]
                log.error("worker %s exited (%s); stopping the others", name, failed)
                failed = failed or 1
                break
            time.sleep(0.2)
        self._stop()
        return failed or max((abs(p.returncode or 0) for p in self.procs), default=0)

    def _stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.settings.server.shutdown_timeout + 2
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.spread_dir is not None:
            shutil.rmtree(self.spread_dir, ignore_errors=True)
        log.info("stopped")
