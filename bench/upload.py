"""Upload throughput and server memory: a tus upload against dd on the same disk.

Starts ``relaycast serve`` as a child process, uploads ``--size`` bytes (default 1 GiB)
in ``--chunk``-byte PATCHes (default 8 MiB) over loopback, and writes the same bytes
to the same disk with ``dd bs=8M conv=fsync`` before and after. The bytes are made on
the fly (one random MiB, stamped per chunk), never held whole, and reach dd through a
pipe just as they reach the server through a socket.

Prints one JSON line::

    {"bench": "upload", "upload_mib_s": .., "dd_mib_s": .., "ratio": ..,
     "server_rss_before_mib": .., "server_peak_rss_mib": .., ...}

``ratio`` is upload / dd throughput (target >= 0.5). The server fsyncs after every
PATCH (an acknowledged offset is on disk); dd fsyncs once at the end. Peak RSS is the
kernel's VmHWM for the server process, so no spike between samples is missed.

Run: .venv/bin/python bench/upload.py [--size BYTES] [--chunk BYTES] [--record]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.serverproc import ServerProcess, start_server

MIB = 1024 * 1024
RESULTS = Path(__file__).resolve().parent / "results"


def chunks(total: int, size: int) -> Iterator[bytes]:
    block = os.urandom(MIB)
    body = block * (size // MIB) + block[: size % MIB]
    for index in range(-(-total // size)):
        stamp = hashlib.sha256(index.to_bytes(8, "big")).digest()
        piece = stamp + body[len(stamp) :]
        yield piece[: min(size, total - index * size)]


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


def dd_seconds(target: Path, total: int, chunk: int) -> float:
    """Time for dd to write ``total`` bytes fed through a pipe, fsynced at the end."""
    started = time.perf_counter()
    dd = subprocess.Popen(
        ["dd", f"of={target}", "bs=8M", "iflag=fullblock", "conv=fsync", "status=none"],
        stdin=subprocess.PIPE,
    )
    assert dd.stdin is not None
    for piece in chunks(total, chunk):
        dd.stdin.write(piece)
    dd.stdin.close()
    if dd.wait() != 0:
        raise RuntimeError("dd failed")
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


class Uploader:
    def __init__(self, server: ServerProcess) -> None:
        parts = urlsplit(server.base)
        self.host, self.port = parts.hostname or "", parts.port or 80
        self.auth = {"Authorization": f"Bearer {server.bootstrap_key}", "Tus-Resumable": "1.0.0"}
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=300)

    def call(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> dict[str, Any]:
        self.conn.request(method, path, body=body, headers={**self.auth, **headers})
        response = self.conn.getresponse()
        response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: HTTP {response.status}")
        return dict(response.headers)

    def upload(self, total: int, chunk: int) -> tuple[float, str]:
        meta = "filename " + base64.b64encode(b"bench.bin").decode()
        created = self.call(
            "POST", "/v1/uploads", {"Upload-Length": str(total), "Upload-Metadata": meta}
        )
        path = created["Location"]
        started = time.perf_counter()
        offset = 0
        for piece in chunks(total, chunk):
            reply = self.call(
                "PATCH",
                path,
                {"Content-Type": "application/offset+octet-stream", "Upload-Offset": str(offset)},
                piece,
            )
            offset = int(reply["Upload-Offset"])
        elapsed = time.perf_counter() - started
        if offset != total:
            raise RuntimeError(f"upload ended at {offset} of {total}")
        return elapsed, created["Relaycast-Media-Id"]


def run(total: int, chunk: int, workdir: Path) -> dict[str, object]:
    server = start_server(
        workdir / "server",
        "--rtmp-port",
        "0",
        env={"RELAYCAST_API__RATE_LIMIT_PER_MINUTE": "1000000"},
    )
    try:
        client = Uploader(server)
        pid = server.proc.pid
        dd_before = dd_seconds(workdir / "dd.bin", total, chunk)
        rss_before = status_kib(pid, "VmRSS") * 1024
        upload_s, media_id = client.upload(total, chunk)
        peak = status_kib(pid, "VmHWM") * 1024
        client.call("DELETE", f"/v1/media/{media_id}", {})
        dd_after = dd_seconds(workdir / "dd.bin", total, chunk)
    finally:
        server.stop()
    dd_s = (dd_before + dd_after) / 2
    return {
        "bench": "upload",
        "bytes": total,
        "chunk_bytes": chunk,
        "upload_seconds": round(upload_s, 3),
        "upload_mib_s": round(total / MIB / upload_s, 1),
        "dd_seconds": [round(dd_before, 3), round(dd_after, 3)],
        "dd_mib_s": round(total / MIB / dd_s, 1),
        "ratio": round(dd_s / upload_s, 3),
        "server_rss_before_mib": round(rss_before / MIB, 1),
        "server_peak_rss_mib": round(peak / MIB, 1),
        "server_peak_growth_mib": round((peak - rss_before) / MIB, 1),
        "load_average_1m": round(os.getloadavg()[0], 2),  # other work on the machine
        "machine": {
            "cpus": os.cpu_count(),
            "kernel": platform.release(),
            "python": sys.version.split()[0],
        },
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


async def upload_scenario(quick: bool) -> list[dict[str, Any]]:
    """The upload benchmark as a ``python -m bench`` result line (1 GiB, quick 128 MiB)."""
    import asyncio

    size = (128 if quick else 1024) * MIB
    workdir = Path(tempfile.mkdtemp(prefix="relaycast-upload-bench-"))
    try:
        result = await asyncio.to_thread(run, size, 8 * MIB, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    ratio = float(result["ratio"])  # type: ignore[arg-type]
    growth = float(result["server_peak_growth_mib"])  # type: ignore[arg-type]
    met = ratio >= 0.5
    line: dict[str, Any] = {
        "scenario": "UPLOAD",
        "params": {
            "bytes": size,
            "chunk_bytes": 8 * MIB,
            "relaycast": "relaycast",
            "reference": "dd",
        },
        "relaycast": {"mib_per_s": result["upload_mib_s"], "peak_rss_growth_mib": growth},
        "reference": {"mib_per_s": result["dd_mib_s"], "name": "dd"},
        "ratio": ratio,
        "target": "ratio >= 0.5",
        "met": met,
        "machine": result["machine"],
        "at": result["date"],
        "samples": result,
    }
    line["row"] = [
        f"upload: {size // MIB} MiB over tus in 8 MiB PATCHes, MiB/s (server RSS growth)",
        f"{result['upload_mib_s']} (+{growth:.1f} MiB)",
        f"{result['dd_mib_s']} (dd)",
        f"{ratio:.3f}",
        line["target"],
        "yes" if met else "**no**",
        "-",
    ]
    return [line]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1024 * MIB, help="bytes to upload")
    parser.add_argument("--chunk", type=int, default=8 * MIB, help="bytes per PATCH")
    parser.add_argument("--dir", type=Path, default=None, help="where server and dd write")
    parser.add_argument("--record", action="store_true", help="save to bench/results/")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="relaycast-upload-bench-", dir=args.dir))
    try:
        result = run(args.size, args.chunk, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    line = json.dumps(result)
    print(line)
    if args.record:
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"upload-{datetime.now(UTC):%Y-%m-%d}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
