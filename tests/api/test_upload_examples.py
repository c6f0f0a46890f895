"""The upload examples users copy (examples/upload/), each run against a live server.

Every example must leave a ready, probed media item. They send the 2 s test clip in
100 kB chunks (CHUNK_SIZE), so each one goes through several PATCHes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.media_samples import make_clip
from tests.conftest import require_program
from tests.serverproc import ServerProcess, start_server

# disk- or CPU-heavy: after the parallel phase, two at a time (scripts/test.sh)
pytestmark = pytest.mark.serial

EXAMPLES = Path(__file__).parents[2] / "examples" / "upload"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    found = start_server(
        tmp_path_factory.mktemp("server"),
        "--rtmp-port",
        "0",
        env={"RELAYCAST_API__RATE_LIMIT_PER_MINUTE": "100000"},
    )
    yield found
    found.stop()


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "example clip.mp4")


def _run(cmd: list[str], server: ServerProcess, cwd: Path, timeout: float = 300) -> dict[str, Any]:
    env = {
        **os.environ,
        "RELAYCAST": server.base,
        "KEY": server.bootstrap_key or "",
        "CHUNK_SIZE": "100000",
    }
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    printed: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return printed


def _check_ready(server: ServerProcess, printed: dict[str, Any], clip_file: Path) -> None:
    assert printed["status"] == "ready", printed
    req = urllib.request.Request(
        f"{server.base}/v1/media/{printed['mediaId']}",
        headers={"Authorization": f"Bearer {server.bootstrap_key}"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        item = json.load(resp)
    assert item["status"] == "ready" and item["name"] == clip_file.name
    assert item["sizeBytes"] == clip_file.stat().st_size
    assert item["video"]["codec"] == "h264" and item["audio"]["codec"] == "aac"


def test_python_tuspy_example(server: ServerProcess, clip_file: Path, tmp_path: Path) -> None:
    printed = _run([sys.executable, str(EXAMPLES / "upload.py"), str(clip_file)], server, tmp_path)
    _check_ready(server, printed, clip_file)


def test_node_tus_js_client_example(server: ServerProcess, clip_file: Path, tmp_path: Path) -> None:
    node, npm = require_program("node"), require_program("npm")
    for name in ("package.json", "upload.js"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    install = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    printed = _run([node, "upload.js", str(clip_file)], server, tmp_path)
    _check_ready(server, printed, clip_file)


def test_go_standard_library_example(
    server: ServerProcess, clip_file: Path, tmp_path: Path
) -> None:
    go = require_program("go")
    printed = _run([go, "run", str(EXAMPLES / "upload.go"), str(clip_file)], server, tmp_path, 600)
    _check_ready(server, printed, clip_file)


def test_curl_example(server: ServerProcess, clip_file: Path, tmp_path: Path) -> None:
    require_program("curl")
    require_program("openssl")
    printed = _run(["bash", str(EXAMPLES / "upload.sh"), str(clip_file)], server, tmp_path)
    _check_ready(server, printed, clip_file)
