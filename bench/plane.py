"""relaycast's RTMP ingest plane without the control plane, for benchmarks.

``relaycast serve`` = control plane (database, HTTP API) + media plane (ingest, bus,
outputs such as HLS). The control plane is only consulted when a publisher connects,
so the per-packet cost of RTMP ingest is exactly what :func:`build_plane` builds: the
real ``RtmpIngestServer`` + ``IngestManager`` + bus ``Registry``, with an in-memory
stream directory instead of the database. Scenario C runs it inside the benchmark
process (its bus readers must share the loop); ``python -m bench.plane`` runs it as a
server process for scenarios A and B, printing the same ``listening rtmp`` line as
``relaycast serve``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from dataclasses import dataclass
from datetime import datetime

from server.bus import Registry
from server.ingest.manager import IngestManager
from server.ingest.ports import StreamGrant
from server.ingest.rtmp import RtmpIngestServer
from server.settings import IngestSettings, RtmpSettings


class MemoryDirectory:
    """``StreamDirectory`` without a database: every key opens stream ``bench-<key>``,
    with no plan limits (scenario B's flat-out publisher would exceed any plan)."""

    async def authorize(self, stream_key: str) -> StreamGrant | None:
        return StreamGrant(f"bench-{stream_key}", "bench", True, reconnect_window_seconds=0)

    async def session_opened(self, stream_id: str, protocol: str, remote: str, at: datetime) -> str:
        return f"session-{stream_id}"

    async def stream_live(self, stream_id: str, at: datetime) -> None:
        return None

    async def session_closed(
        self,
        stream_id: str,
        session_id: str,
        at: datetime,
        bytes_in: int,
        error: str | None = None,
    ) -> None:
        return None


@dataclass
class Plane:
    registry: Registry
    manager: IngestManager
    rtmp: RtmpIngestServer

    async def close(self) -> None:
        await self.rtmp.close()
        await self.manager.shutdown()


def build_plane() -> Plane:
    registry = Registry()
    manager = IngestManager(MemoryDirectory(), registry, IngestSettings())
    return Plane(registry, manager, RtmpIngestServer(manager, RtmpSettings(port=0)))


async def serve(host: str = "127.0.0.1") -> None:
    plane = build_plane()
    port = await plane.rtmp.listen(host, 0)
    log = logging.getLogger("relaycast")
    log.warning("listening rtmp rtmp://%s:%d/live", host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await plane.close()


def main() -> None:
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve())
    else:
        uvloop.run(serve())


if __name__ == "__main__":
    main()
