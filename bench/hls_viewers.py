"""LL-HLS viewer load: N players on one media playlist, in one process (scenario HLS-C).

Each viewer does what hls.js does at the live edge: a blocking reload for the next part
(``_HLS_msn``/``_HLS_part``), then a GET of every part the answer lists that it has not
fetched yet; each viewer has its own keep-alive connection. Only requests that *start*
inside the measurement window (``--warmup`` .. ``--seconds``) are counted, so the
orchestrator can read the server's CPU over the same window. One JSON line at the end::

    python -m bench.hls_viewers --url http://…/media.m3u8 --viewers 250 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from dataclasses import dataclass, field

import aiohttp

from bench.hls_playlist import next_request, parse_parts


@dataclass
class Tally:
    window: tuple[float, float]
    playlists: int = 0
    parts: int = 0
    errors: int = 0
    first_error: str | None = None
    part_ms: list[float] = field(default_factory=list)
    reload_ms: list[float] = field(default_factory=list)

    def counts(self, started: float) -> bool:
        return self.window[0] <= started < self.window[1]

    def error(self, what: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or what


async def viewer(url: str, tally: Tally, stop: float) -> None:
    base = url.rsplit("/", 1)[0] + "/"
    fetched: set[str] = set()
    query = ""
    clock = time.monotonic
    connector = aiohttp.TCPConnector(limit=1)
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        while clock() < stop:
            started = clock()
            try:
                async with http.get(url + query) as resp:
                    text = await resp.text()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                tally.error(f"playlist: {exc!r}")
                await asyncio.sleep(0.5)
                query = ""
                continue
            if tally.counts(started):
                tally.playlists += 1
                tally.reload_ms.append((clock() - started) * 1000)
            if status != 200:
                tally.error(f"playlist {query} -> {status}")
                query = ""
                await asyncio.sleep(0.1)
                continue
            parts = parse_parts(text)
            fresh = [p for p in parts if p.uri not in fetched]
            if not fetched:
                fresh = fresh[-1:]  # join at the live edge
            for part in fresh:
                fetched.add(part.uri)
                started = clock()
                try:
                    async with http.get(base + part.uri) as resp:
                        await resp.read()
                        status = resp.status
                except (aiohttp.ClientError, TimeoutError) as exc:
                    tally.error(f"part: {exc!r}")
                    continue
                if tally.counts(started):
                    tally.parts += 1
                    tally.part_ms.append((clock() - started) * 1000)
                if status != 200:
                    tally.error(f"part {part.uri} -> {status}")
            if len(fetched) > 200:
                fetched = {p.uri for p in parts}
            query = next_request(text, parts)


async def run(args: argparse.Namespace) -> None:
    now = time.monotonic()
    stop = now + args.seconds
    tally = Tally((now + args.warmup, stop))
    gap = args.ramp / max(1, args.viewers)
    tasks = []
    for _ in range(args.viewers):
        tasks.append(asyncio.create_task(viewer(args.url, tally, stop)))
        await asyncio.sleep(gap)
    await asyncio.gather(*tasks, return_exceptions=True)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out = {
        "playlists": tally.playlists,
        "parts": tally.parts,
        "errors": tally.errors,
        "first_error": tally.first_error,
        "part_ms": tally.part_ms,
        "reload_ms": tally.reload_ms,
        "window_s": args.seconds - args.warmup,
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }
    sys.stdout.write(json.dumps(out) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the media playlist")
    parser.add_argument("--viewers", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0, help="total run time")
    parser.add_argument("--warmup", type=float, default=5.0, help="not counted")
    parser.add_argument("--ramp", type=float, default=2.0, help="seconds to start everyone")
    args = parser.parse_args(argv)
    try:
        import uvloop
    except ImportError:
        asyncio.run(run(args))
    else:
        uvloop.run(run(args))


if __name__ == "__main__":
    main()
