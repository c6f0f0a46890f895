"""``relaycast serve --workers N`` refuses what cannot work, with one clear line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from control_api.settings import load_settings
from control_api.workers import WorkersRefused, _without_workers, check, worker_names
from tests.cli.test_cli import rc
from tests.serverproc import RELAYCAST

PG = {"RELAYCAST_DATABASE__URL": "postgresql+asyncpg://u:p@127.0.0.1:1/x"}


def test_workers_are_refused_on_sqlite(tmp_path: Path) -> None:
    out = rc("serve", "--workers", "2", "--http-port", "18080", data=tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip() == (
        "relaycast: error: --workers needs database.url on PostgreSQL: "
        "SQLite is one process's database"
    )
    assert not (tmp_path / "relaycast.db").exists()


def test_workers_need_fixed_ports(tmp_path: Path) -> None:
    out = subprocess.run(
        [*RELAYCAST, "serve", "--workers", "2", "--rtmp-port", "0", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **PG},
    )
    assert out.returncode == 2, out.stderr
    assert "--workers needs fixed ports (rtmp.port is 0" in out.stderr


def test_worker_names_and_command_line() -> None:
    settings = load_settings(environ={"RELAYCAST_NODE__NAME": "edge"})
    assert worker_names(settings, 3) == ["edge-1", "edge-2", "edge-3"]
    argv = ["serve", "--workers", "2", "--http-port", "8081", "--workers=3", "--region", "x"]
    assert _without_workers(argv) == ["serve", "--http-port", "8081", "--region", "x"]


def test_workers_refuse_one_internal_url_for_all() -> None:
    """Each worker plays its own streams to the others: one URL cannot name them all."""
    environ = {**PG, "RELAYCAST_NODE__INTERNAL_URL": "http://10.0.0.5:8081"}
    with pytest.raises(WorkersRefused, match=r"leave node\.internal_url unset"):
        check(load_settings(environ=environ), 2)
