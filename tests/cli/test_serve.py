"""``relaycast serve`` end to end: bootstrap key, URLs, README flow, restart, graceful stop."""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

from tests.serverproc import start_server


def http(method: str, url: str, key: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            text = resp.read()
            return resp.status, json.loads(text) if text else None
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def test_first_start_prints_key_once_and_urls_use_public_host(tmp_path: Path) -> None:
    server = start_server(
        tmp_path,
        "--public-host",
        "live.example.test",
        "--rtmp-port",
        "19350",
        "--srt-port",
        "19000",
    )
    try:
        key = server.bootstrap_key
        assert key and key.startswith("rk_")
        assert "bootstrap admin API key" in "".join(server.stdout)
        assert key not in "".join(server.stderr)  # never logged
        status, stream = http("POST", server.base + "/v1/live-streams", key, {"name": "show"})
        assert status == 201
        assert stream["ingest"]["rtmpUrl"] == "rtmp://live.example.test:19350/live"
        assert stream["ingest"]["srtUrl"] == "srt://live.example.test:19000"
        port = server.base.rsplit(":", 1)[1]
        assert stream["playback"]["hlsUrl"].startswith(f"http://live.example.test:{port}/live/")
        assert stream["ingest"]["streamKey"] not in "".join(server.stderr)
        took = server.stop(signal.SIGTERM)
        assert server.proc.returncode == 0 and took < 10.0
        assert server.shutdown_seconds() < 5.0
    finally:
        server.stop()
    again = start_server(tmp_path)
    try:
        assert again.bootstrap_key is None
        assert http("GET", again.base + "/v1/live-streams", key)[1]["total"] == 1
    finally:
        again.stop(signal.SIGINT)
    assert again.proc.returncode == 0 and again.shutdown_seconds() < 5.0


def test_readme_curl_examples_work_as_written(tmp_path: Path) -> None:
    """Runs the README's curl block with the bootstrap key and the server's port."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("<!-- curl-examples -->", 2)[1]
    script = block.split("```bash", 1)[1].split("```", 1)[0]
    server = start_server(tmp_path)
    try:
        env = {"RELAYCAST": server.base, "KEY": server.bootstrap_key or "", "PATH": "/usr/bin:/bin"}
        script = f"cd {tmp_path}\n" + script
        out = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        status, listing = http("GET", server.base + "/v1/live-streams", server.bootstrap_key or "")
        assert status == 200 and listing["total"] == 0  # the example creates, rotates, deletes
        assert "sk_" in out.stdout and "rotated" in out.stdout
        # the same rotate-key lines on a stream that is gone (the 409 of a live one
        # likewise) print the problem and fail; they must not claim "rotated"
        rotate = "\n".join(
            block.split("# rotate the key", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
        )
        env["STREAM_ID"] = "ls_gone"
        again = subprocess.run(
            ["bash", "-c", rotate], capture_output=True, text=True, env=env, timeout=30
        )
        assert again.returncode != 0 and "rotated" not in again.stdout, again.stdout
        assert "does not exist" in again.stdout + again.stderr
    finally:
        server.stop()
