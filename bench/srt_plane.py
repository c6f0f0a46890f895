"""relaycast's SRT ingest plane without the control plane, for SRT benchmarks.

The SRT counterpart of ``python -m bench.plane``: the real ``SrtIngestServer`` +
``IngestManager`` + bus ``Registry`` with the in-memory stream directory (any key
opens a stream, no passphrase), as its own process so its CPU can be read from
/proc. Prints ``listening srt srt://HOST:PORT`` on stderr.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys

from bench.plane import MemoryDirectory
from server.bus import Registry
from server.ingest.manager import IngestManager
from server.ingest.srt import SrtIngestServer
from server.settings import IngestSettings, SrtSettings


async def serve(host: str = "127.0.0.1") -> None:
    registry = Registry()
    manager = IngestManager(MemoryDirectory(), registry, IngestSettings())
    server = SrtIngestServer(manager, SrtSettings(port=0))
    port = await server.listen(host, 0)
    # as relaycast serve does after start-up (and bench.plane): without it every full
    # collection re-scans the modules, 20-50 ms each at 100 streams, once a second
    gc.freeze()
    logging.getLogger("relaycast").warning("listening srt srt://%s:%d", host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.close()
    await manager.shutdown()


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
