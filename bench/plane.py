"""relaycast's RTMP ingest plane without the control plane, for benchmarks.

``relaycast serve`` = control plane (database, HTTP API) + media plane (ingest, bus,
outputs such as HLS). The control plane is only consulted when a publisher connects,
so the per-packet cost of RTMP ingest is exactly what :func:`build_plane` builds: the
real ``RtmpIngestServer`` + ``IngestManager`` + bus ``Registry``, with an in-memory
stream directory instead of the database. Scenario C runs it inside the benchmark
process (its bus readers must share the loop); ``python -m bench.plane`` runs it as a
server process for scenarios A and B, printing the same ``listening rtmp`` line as
``relaycast serve``.

``--floor`` runs the same listener, but once a publisher is accepted its bytes are only
counted, never parsed: uvloop + the kernel + one Python call per read. That is the
ceiling any asyncio server in Python can reach on the same load, so each ratio can be
read against what Python itself allows.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from dataclasses import dataclass
from datetime import datetime

from server.bus import Registry, StreamGrant
from server.ingest.manager import IngestManager
from server.ingest.rtmp import RtmpIngestConnection, RtmpIngestServer
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


class FloorConnection(RtmpIngestConnection):
    """Handshake and publish go through the real code; after that, reads are only counted."""

    floor_bytes = 0
    coalesce_reads = False  # the floor is uvloop's own read callback

    def data_received(self, data: bytes) -> None:
        if self.claim is None:
            super().data_received(data)
            if self.claim is not None:
                self.timer.cancel()  # no idle deadline: nothing is parsed any more
            return
        self.floor_bytes += len(data)


@dataclass
class Plane:
    registry: Registry
    manager: IngestManager
    rtmp: RtmpIngestServer

    async def close(self) -> None:
        await self.rtmp.close()
        await self.manager.shutdown()


def build_plane(floor: bool = False) -> Plane:
    registry = Registry()
    manager = IngestManager(MemoryDirectory(), registry, IngestSettings())
    rtmp = RtmpIngestServer(manager, RtmpSettings(port=0))
    if floor:
        rtmp.connection_class = FloorConnection
    return Plane(registry, manager, rtmp)


async def serve(host: str = "127.0.0.1", floor: bool = False) -> None:
    plane = build_plane(floor)
    port = await plane.rtmp.listen(host, 0)
    gc.freeze()  # as relaycast serve does after start-up
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
    floor = "--floor" in sys.argv[1:]
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(floor=floor))
    else:
        uvloop.run(serve(floor=floor))


if __name__ == "__main__":
    main()
