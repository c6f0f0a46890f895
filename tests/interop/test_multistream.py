"""Multistream against real receivers on 127.0.0.1 (issue 6).

* Ten destinations of three kinds at once: nginx-rtmp (several applications on two
  ports; pulled back with ffprobe), an ``ffmpeg -listen 1`` RTMP receiver and an
  ``srt-live-transmit`` listener; all must receive decodable media. Patching one URL
  while live reconnects only that destination.
* Isolation: a destination that accepts TCP and never reads must not slow the
  publisher or the others (their received bitrate is measured); a killed nginx goes
  to ``error`` with a ``lastError``, retries with growing delays and is ``active``
  again when it returns, while the others never notice.
* RTMPS through an nginx ``stream`` TLS front with a self-signed certificate that
  the server trusts through ``push.ca_file``; a name the certificate does not cover
  is refused (verification is on). A destination refusing the key is reported as a
  refusal (``NetStream.Publish.BadName``).
* Stream keys never appear in API responses or the server log.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_program
from tests.interop.conftest import (
    Peer,
    Peers,
    Relaycast,
    StartRelaycast,
    ffmpeg_publish,
    wait_for,
)
from tests.tls import self_signed

pytestmark = [pytest.mark.interop, pytest.mark.serial]

MODULES = Path("/usr/lib/nginx/modules")
RTMP_MODULE = MODULES / "ngx_rtmp_module.so"
STREAM_MODULE = MODULES / "ngx_stream_module.so"


def require_module(path: Path, package: str) -> None:
    require_program("nginx")
    if not path.exists():
        message = f"{package} is not installed (scripts/install-peers.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------- receivers


def nginx_conf(
    prefix: Path, ports: list[int], apps: list[str], tls: tuple[int, Path, Path] | None
) -> str:
    servers = "".join(
        f"  server {{\n    listen 127.0.0.1:{port};\n"
        + "".join(f"    application {app} {{ live on; }}\n" for app in apps)
        + "  }\n"
        for port in ports
    )
    head = f"load_module {RTMP_MODULE};\n"
    stream = ""
    if tls is not None:
        tls_port, cert, key = tls
        head += f"load_module {STREAM_MODULE};\n"
        stream = (
            "stream {\n  server {\n"
            f"    listen 127.0.0.1:{tls_port} ssl;\n"
            f"    ssl_certificate {cert};\n    ssl_certificate_key {key};\n"
            f"    proxy_pass 127.0.0.1:{ports[0]};\n  }}\n}}\n"
        )
    return (
        head
        + f"daemon off;\nmaster_process off;\npid {prefix}/nginx.pid;\n"
        + f"error_log {prefix}/error.log info;\nevents {{ worker_connections 256; }}\n"
        + f"rtmp {{\n{servers}}}\n"
        + stream
    )


def start_nginx(
    peers: Peers,
    prefix: Path,
    ports: list[int],
    apps: list[str],
    tls: tuple[int, Path, Path] | None = None,
) -> Peer:
    require_module(RTMP_MODULE, "libnginx-mod-rtmp")
    if tls is not None:
        require_module(STREAM_MODULE, "libnginx-mod-stream")
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_conf(prefix, ports, apps, tls))
    cmd = ["nginx", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    nginx = peers.start("nginx", cmd, limit=120)
    wait_for(
        lambda: nginx.running() and all(accepts(p) for p in ports),
        bool,
        timeout=5,
        what="nginx-rtmp to listen",
    )
    return nginx


def ffmpeg_receiver(peers: Peers, port: int, out: Path) -> Peer:
    """``ffmpeg -listen 1``: one RTMP publisher, recorded to an FLV file written per
    packet (so its size is what was received so far)."""
    ffmpeg = require_program("ffmpeg")
    url = f"rtmp://127.0.0.1:{port}/live/recv"
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-v", "error", "-y", "-listen", "1", "-i", url]
    out_args = ["-c", "copy", "-flush_packets", "1", "-f", "flv", str(out)]
    return peers.start("ffmpeg-listen", [*cmd, *out_args], limit=90)


def srt_receiver(peers: Peers, port: int, out: Path) -> Peer:
    """``srt-live-transmit`` listener writing the MPEG-TS it receives to ``out``; it
    logs "SRT source disconnected" when the caller closes, then waits for another."""
    slt = require_program("srt-live-transmit")
    url = f"srt://127.0.0.1:{port}?mode=listener"
    cmd = f"exec {slt} -t 60 '{url}' file://con > {out}"
    return peers.start("srt-live-transmit", ["sh", "-c", cmd], limit=90)


def probe(target: str, timeout: float = 30) -> subprocess.Popen[str]:
    """ffprobe of a file or a live RTMP URL (nginx-rtmp playback), started now."""
    ffprobe = require_program("ffprobe")
    cmd = [ffprobe, "-v", "error", *(["-rw_timeout", "10000000"] if "://" in target else [])]
    cmd += ["-show_entries", "stream=codec_name,width,height", "-of", "json", target]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def codecs(proc: subprocess.Popen[str], timeout: float = 30) -> set[str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    assert proc.returncode == 0, err
    return {s["codec_name"] for s in json.loads(out or "{}").get("streams", [])}


# ---------------------------------------------------------------- API helpers


class Destinations:
    """The destinations API of one stream, remembering every response text."""

    def __init__(self, relaycast: Relaycast, stream_id: str) -> None:
        self.api = relaycast.api
        self.path = f"/v1/live-streams/{stream_id}/destinations"
        self.texts: list[str] = []

    def _call(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        got, doc = self.api.call(method, path, body)
        self.texts.append(json.dumps(doc))
        assert got == status, f"{method} {path} -> {got}: {doc}"
        return doc

    def create(self, url: str, key: str | None = None, status: int = 201) -> Any:
        body = {"url": url, **({"streamKey": key} if key else {})}
        return self._call("POST", self.path, body, status)

    def get(self, destination_id: str) -> dict[str, Any]:
        doc: dict[str, Any] = self._call("GET", f"{self.path}/{destination_id}")
        return doc

    def patch(self, destination_id: str, **body: Any) -> Any:
        return self._call("PATCH", f"{self.path}/{destination_id}", body)

    def statuses(self) -> dict[str, dict[str, Any]]:
        doc = self._call("GET", self.path)
        return {d["destinationId"]: d["status"] for d in doc["destinations"]}

    def wait(self, ids: list[str], state: str, timeout: float) -> dict[str, dict[str, Any]]:
        return wait_for(
            self.statuses,
            lambda s: all(s[i]["state"] == state for i in ids),
            timeout,
            f"destinations {ids} to be {state}",
            every=0.25,
        )


def assert_no_secrets(keys: list[str], relaycast: Relaycast, dests: Destinations) -> None:
    log = relaycast.log()
    for key in keys:
        assert key not in log, f"stream key {key} in the server log"
        for text in dests.texts:
            assert key not in text, f"stream key {key} in an API response"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def relaycast_push(start_relaycast: StartRelaycast, tls_files: tuple[Path, Path]) -> Relaycast:
    """A server trusting the test certificate for rtmps:// destinations."""
    return start_relaycast(env={"RELAYCAST_PUSH__CA_FILE": str(tls_files[0])})


def publisher(peers: Peers, relaycast: Relaycast, stream: dict[str, Any], seconds: int) -> Peer:
    cmd = ffmpeg_publish(relaycast.publish_url(stream), seconds, size="320x180", fps=25)
    return peers.start("encoder", cmd, limit=seconds + 30)


# ---------------------------------------------------------------- tests


def test_ten_destinations_of_three_kinds(
    relaycast_push: Relaycast, peers: Peers, tmp_path: Path
) -> None:
    relaycast = relaycast_push
    ports = [free_port(), free_port()]
    apps = ["a1", "a2", "a3", "a4", "moved"]
    start_nginx(peers, tmp_path / "nginx", ports, apps)
    listen_port, srt_port = free_port(), free_port()
    flv, ts = tmp_path / "listen.flv", tmp_path / "srt.ts"
    listener = ffmpeg_receiver(peers, listen_port, flv)
    srt = srt_receiver(peers, srt_port, ts)
    stream = relaycast.api.create_stream("multistream", reconnectWindowSeconds=0)
    dests = Destinations(relaycast, stream["streamId"])
    keys = [f"nginxkey{i}-{os.getpid()}" for i in range(8)]
    nginx_targets = [(port, app) for port in ports for app in apps[:4]]
    ids = [
        dests.create(f"rtmp://127.0.0.1:{port}/{app}", key)["destinationId"]
        for (port, app), key in zip(nginx_targets, keys, strict=True)
    ]
    ids.append(dests.create(f"rtmp://127.0.0.1:{listen_port}/live", "recv")["destinationId"])
    srt_key = f"srtkey-{os.getpid()}"
    ids.append(dests.create(f"srt://127.0.0.1:{srt_port}?latency=120", srt_key)["destinationId"])
    dests.create("rtmp://127.0.0.1:1/live", "eleventh", status=422)

    encoder = publisher(peers, relaycast, stream, 14)
    before = dests.wait(ids, "active", timeout=15)
    # patch one URL while live: only that destination reconnects
    moved = ids[0]
    dests.patch(moved, url=f"rtmp://127.0.0.1:{ports[0]}/moved")
    wait_for(
        lambda: dests.get(moved)["status"],
        lambda s: s["state"] == "active" and s["reconnects"] == 1,
        timeout=10,
        what="the patched destination to reconnect",
    )
    # pull every nginx destination back while live
    pulls = [probe(f"rtmp://127.0.0.1:{ports[0]}/moved/{keys[0]}")] + [
        probe(f"rtmp://127.0.0.1:{port}/{app}/{key}")
        for (port, app), key in zip(nginx_targets[1:], keys[1:], strict=True)
    ]
    for pull in pulls:
        assert codecs(pull) == {"h264", "aac"}
    after = dests.statuses()
    for other in ids[1:]:
        assert after[other]["reconnects"] == 0, after[other]
        assert after[other]["connectedAt"] == before[other]["connectedAt"]
        assert after[other]["state"] == "active"
        assert after[other]["bytesSent"] > before[other]["bytesSent"]
    assert encoder.wait(30) == 0, encoder.output()
    # the session ends: every push unpublishes, the one-shot receivers finish
    assert listener.wait(20) == 0, listener.output()
    wait_for(srt.output, lambda out: "SRT source disconnected" in out, 10, "SRT unpublish")
    srt.kill()  # a listener waits for the next caller; the file is complete
    assert codecs(probe(str(flv))) == {"h264", "aac"}
    assert codecs(probe(str(ts))) == {"h264", "aac"}
    dests.wait(ids, "idle", timeout=10)
    assert_no_secrets([*keys, srt_key], relaycast, dests)


def test_isolation_and_self_healing(
    relaycast_push: Relaycast, peers: Peers, tmp_path: Path
) -> None:
    relaycast = relaycast_push
    # a destination that accepts TCP connections and never reads a byte
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(8)
    hole_port = hole.getsockname()[1]
    nginx_port = free_port()
    nginx_dir = tmp_path / "nginx"
    nginx = start_nginx(peers, nginx_dir, [nginx_port], ["live"])
    ports = [free_port(), free_port()]
    files = [tmp_path / "a.flv", tmp_path / "b.flv"]
    for port, out in zip(ports, files, strict=True):
        ffmpeg_receiver(peers, port, out)
    stream = relaycast.api.create_stream("isolation", reconnectWindowSeconds=0)
    sid = stream["streamId"]
    dests = Destinations(relaycast, sid)
    calm = [dests.create(f"rtmp://127.0.0.1:{p}/live", "recv")["destinationId"] for p in ports]
    healing = dests.create(f"rtmp://127.0.0.1:{nginx_port}/live", "healkey")["destinationId"]
    stuck = dests.create(f"rtmp://127.0.0.1:{hole_port}/live", "holekey")["destinationId"]
    seconds = 34
    started = time.monotonic()
    encoder = publisher(peers, relaycast, stream, seconds)
    try:
        before = dests.wait([*calm, healing], "active", timeout=15)
        # the stuck one never gets through the handshake: error, named, retried
        dests.wait([stuck], "error", timeout=15)
        # whichever 10 s limit fires first names it: the connect budget or the RTMP
        # handshake deadline
        error = str(dests.get(stuck)["status"]["lastError"])
        assert "no publish within" in error or "handshake not completed" in error, error
        # the others receive at the ingest rate meanwhile (measured at the receivers)
        sizes = [f.stat().st_size for f in files]
        ingest_bytes = relaycast.api.health(sid)["ingest"]["bytesIn"]
        time.sleep(4)
        received = [f.stat().st_size - s for f, s in zip(files, sizes, strict=True)]
        ingested = relaycast.api.health(sid)["ingest"]["bytesIn"] - ingest_bytes
        for got in received:
            assert got > 0.8 * ingested, (received, ingested)

        # kill a receiver: error with a reason, growing retry delays, active on return
        nginx.signal(signal.SIGKILL)
        nginx.wait(5)
        dests.wait([healing], "error", timeout=10)
        # when each failed retry is seen (the API shows whole seconds): 1, 2, 4 s apart
        seen: list[tuple[int, float]] = []

        def record() -> list[tuple[int, float]]:
            reconnects = dests.get(healing)["status"]["reconnects"]
            if not seen or seen[-1][0] != reconnects:
                seen.append((reconnects, time.monotonic()))
            return seen

        wait_for(record, lambda r: len(r) >= 4, timeout=15, what="three retries", every=0.1)
        gaps = [b[1] - a[1] for a, b in itertools.pairwise(seen[1:])]
        assert gaps[1] > gaps[0] * 1.3, gaps
        assert dests.get(healing)["status"]["lastError"]
        start_nginx(peers, nginx_dir, [nginx_port], ["live"])
        dests.wait([healing], "active", timeout=12)
        assert codecs(probe(f"rtmp://127.0.0.1:{nginx_port}/live/healkey")) == {"h264", "aac"}

        after = dests.statuses()
        for one in calm:
            assert after[one]["reconnects"] == 0
            assert after[one]["connectedAt"] == before[one]["connectedAt"]
            assert after[one].get("droppedFrames", 0) == 0
        # the publisher was never slowed: it ran in real time to the end
        assert encoder.wait(20) == 0, encoder.output()
        assert time.monotonic() - started < seconds + 12
    finally:
        hole.close()
    assert_no_secrets(["healkey", "holekey"], relaycast, dests)


def test_rtmps_through_a_tls_front(
    relaycast_push: Relaycast, peers: Peers, tmp_path: Path, tls_files: tuple[Path, Path]
) -> None:
    relaycast = relaycast_push
    rtmp_port, tls_port = free_port(), free_port()
    cert, key = tls_files
    start_nginx(peers, tmp_path / "nginx", [rtmp_port], ["live"], (tls_port, cert, key))
    wait_for(lambda: accepts(tls_port), bool, timeout=5, what="the TLS front")
    stream = relaycast.api.create_stream("rtmps", reconnectWindowSeconds=0)
    dests = Destinations(relaycast, stream["streamId"])
    good = dests.create(f"rtmps://127.0.0.1:{tls_port}/live", "tlskey")["destinationId"]
    # the certificate names 127.0.0.1 only: "localhost" must fail verification
    wrong = dests.create(f"rtmps://localhost:{tls_port}/live", "tlskey2")["destinationId"]
    # a server that refuses the key (relaycast's own ingest): reported as a refusal
    refused_key = f"not-a-stream-key-{os.getpid()}"
    refused = dests.create(relaycast.rtmp_url, refused_key)["destinationId"]
    encoder = publisher(peers, relaycast, stream, 8)
    dests.wait([good], "active", timeout=15)
    assert codecs(probe(f"rtmp://127.0.0.1:{rtmp_port}/live/tlskey")) == {"h264", "aac"}
    status = dests.wait([wrong], "error", timeout=15)[wrong]
    assert "certificate" in str(status["lastError"]).lower(), status
    status = dests.wait([refused], "error", timeout=15)[refused]
    assert "refused by the destination: NetStream.Publish.BadName" in status["lastError"]
    assert encoder.wait(20) == 0, encoder.output()
    assert_no_secrets(["tlskey", "tlskey2", refused_key], relaycast, dests)
