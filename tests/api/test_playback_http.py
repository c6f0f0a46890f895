"""HLS playback over HTTP on 127.0.0.1: a real bus, packager and aiohttp server.

Every test runs twice: on aiohttp alone, and with the LL-HLS fast path in front of it
(``server.hls.fast``) as ``relaycast serve`` has it. With the fast path each request
opens its own connection, since one the fast path handed to aiohttp stays aiohttp's.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web

from server.bus import Registry, Stream
from server.hls import http as hls_http
from server.hls.fast import MAX_BUFFERED, FastHls
from server.hls.packager import HlsService, PlaybackInfo
from server.media.frame import CodecConfig, Frame
from server.settings import HlsSettings
from tests.unit.media.avsource import encode_audio, encode_video


@dataclass
class Rig:
    base: str
    http: aiohttp.ClientSession
    stream: Stream
    frames: list[Frame]
    configs: list[CodecConfig]
    service: HlsService
    fast: FastHls | None = None

    async def get(self, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        if self.fast is None:
            return await _get(self.http, self.base + path, headers)
        async with aiohttp.ClientSession() as fresh:
            return await _get(fresh, self.base + path, headers)

    def publish(self, frames: list[Frame]) -> None:
        for frame in frames:
            self.stream.publish(frame)


async def _get(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    async with http.get(url, headers=headers) as resp:
        return resp.status, dict(resp.headers), await resp.read()


@pytest.fixture(scope="module")
def media() -> tuple[list[CodecConfig], list[Frame]]:
    video_config, video = encode_video(seconds=6, gop=30)
    audio_config, audio = encode_audio(seconds=6)
    return [video_config, audio_config], sorted(video + audio, key=lambda f: f.dts)


PLAYBACK_KEY = b"p" * 32


@contextlib.asynccontextmanager
async def _serve(
    media: tuple[list[CodecConfig], list[Frame]],
    settings: HlsSettings,
    private: bool = False,
    max_clients: int | None = None,
    fast: bool = False,
) -> AsyncIterator[Rig]:
    configs, frames = media
    service = HlsService(settings, playback_key=PLAYBACK_KEY)
    stream = Registry().create("ls_1")
    for config in configs:
        stream.set_config(config)
    info = PlaybackInfo("ls_1", "lse_1", low_latency=True, private=private, max_clients=max_clients)
    service.start(info, stream)
    app = web.Application()
    hls_http.mount(app, service)
    runner = web.AppRunner(app)
    await runner.setup()
    fast_hls = FastHls(service, 10.0) if fast else None
    listener: asyncio.Server | None = None
    if fast_hls is not None and runner.server is not None:
        factory = fast_hls.factory(runner.server)
        listener = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
    else:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{port}/live/lse_1/"
            yield Rig(base, http, stream, frames, configs, service, fast_hls)
    finally:
        if listener is not None:
            listener.close()
        await service.close()
        await runner.cleanup()


@pytest.fixture(params=[False, True], ids=["aiohttp", "fast"])
def fast(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture(params=[False])
async def rig(
    request: pytest.FixtureRequest, media: tuple[list[CodecConfig], list[Frame]], fast: bool
) -> AsyncIterator[Rig]:
    private = request.param is True
    max_clients = request.param if isinstance(request.param, int) and request.param > 1 else None
    async with _serve(media, HlsSettings(), private, max_clients, fast) as served:
        yield served


async def _settle() -> None:
    await asyncio.sleep(0.05)


async def test_playlists_segments_and_headers(rig: Rig) -> None:
    rig.publish(rig.frames[: len(rig.frames) * 2 // 3])  # ~4 s
    await _settle()
    status, headers, body = await rig.get("master.m3u8")
    assert status == 200 and headers["Content-Type"] == "application/vnd.apple.mpegurl"
    assert headers["Access-Control-Allow-Origin"] == "*" and headers["Cache-Control"] == "no-cache"
    assert b'CODECS="avc1.' in body and b"RESOLUTION=320x180" in body
    status, _, playlist = await rig.get("media.m3u8")
    text = playlist.decode()
    assert status == 200 and "#EXT-X-PART-INF:PART-TARGET=0.5" in text
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text)
    segment = re.search(r"^(seg\d+\.m4s)$", text, re.M)
    assert init and segment
    status, headers, body = await rig.get(init.group(1))
    assert status == 200 and headers["Content-Type"] == "video/mp4" and body[4:8] == b"ftyp"
    status, headers, body = await rig.get(segment.group(1))
    assert status == 200 and "immutable" in headers["Cache-Control"] and len(body) > 1000


async def test_range_requests(rig: Rig) -> None:
    rig.publish(rig.frames[: len(rig.frames) * 2 // 3])
    await _settle()
    text = (await rig.get("media.m3u8"))[2].decode()
    name = re.search(r"^(seg\d+\.m4s)$", text, re.M).group(1)  # type: ignore[union-attr]
    full = (await rig.get(name))[2]
    status, headers, body = await rig.get(name, Range="bytes=10-109")
    assert status == 206 and body == full[10:110]
    assert headers["Content-Range"] == f"bytes 10-109/{len(full)}"
    status, _, body = await rig.get(name, Range="bytes=-20")
    assert status == 206 and body == full[-20:]
    status, headers, _ = await rig.get(name, Range=f"bytes={len(full)}-")
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(full)}"


async def test_non_ascii_digits_are_400_or_404_never_500(rig: Rig) -> None:
    """Unicode digits are not numbers here: "²" made int() raise (a 500 with a
    traceback) and U+0661 was read as 1."""
    rig.publish(rig.frames[: len(rig.frames) * 2 // 3])
    await _settle()
    text = (await rig.get("media.m3u8"))[2].decode()
    name = re.search(r"^(seg\d+\.m4s)$", text, re.M).group(1)  # type: ignore[union-attr]
    for query in ("_HLS_msn=\u00b2", "_HLS_msn=\u0661", "_HLS_msn=1&_HLS_part=\u00b2"):
        status, _, body = await rig.get(f"media.m3u8?{query}")
        assert status == 400 and b"ASCII" in body, query
    assert (await rig.get("seg\u0661.m4s"))[0] == 404
    assert (await rig.get("part1.\u00b2.m4s"))[0] == 404
    full = (await rig.get(name))[2]
    for bad_range in ("bytes=\u00b2-", "bytes=0-" + "9" * 5000):
        status, _, body = await rig.get(name, Range=bad_range)
        assert status == 200 and body == full  # an unusable Range is ignored


def _seconds(frames: list[Frame], seconds: float) -> list[Frame]:
    start = frames[0].dts
    return [f for f in frames if f.dts - start < seconds * 90_000]


async def test_plain_playlist_is_held_until_the_first_segment(rig: Rig) -> None:
    """Before the first segment completes the playlist has only parts, and players
    without LL-HLS (ffprobe, VLC) give up on it: the request waits for a segment."""
    rig.publish(_seconds(rig.frames, 1.5))  # parts of the first 2 s segment, no segment
    await _settle()
    held = asyncio.ensure_future(rig.get("media.m3u8"))
    await asyncio.sleep(0.3)
    assert not held.done()
    status, _, body = await rig.get(f"media.m3u8?_HLS_msn={_first_msn(rig)}&_HLS_part=0")
    assert status == 200 and b"#EXT-X-PART:" in body  # blocking reloads: as before
    rig.publish(rig.frames[len(_seconds(rig.frames, 1.5)) :])
    status, _, body = await asyncio.wait_for(held, 5)
    assert status == 200 and re.search(rb"^seg\d+\.m4s$", body, re.M)


def _first_msn(rig: Rig) -> int:
    """The open first segment's number (numbering starts at the session's start time)."""
    packager = rig.service.get("lse_1")
    assert packager is not None
    return packager.segmenter.edge().last_msn + 1


@pytest.mark.serial
async def test_plain_playlist_without_a_segment_is_503_after_three_target_durations(
    media: tuple[list[CodecConfig], list[Frame]], fast: bool
) -> None:
    settings = HlsSettings(target_duration=1.0, part_target=0.5)
    async with _serve(media, settings, fast=fast) as rig:
        rig.publish(_seconds(rig.frames, 0.6))  # a part or so, no segment
        await _settle()
        loop = asyncio.get_running_loop()
        started = loop.time()
        blocking = asyncio.ensure_future(rig.get(f"media.m3u8?_HLS_msn={_first_msn(rig)}"))
        status, headers, _ = await rig.get("media.m3u8")
        waited = loop.time() - started
        assert status == 503 and headers["Retry-After"] == "1"
        assert 2.8 < waited < 4.0  # 3 x EXT-X-TARGETDURATION
        status, headers, _ = await asyncio.wait_for(blocking, 2)  # a blocking reload too
        assert status == 503 and headers["Retry-After"] == "1"


async def test_blocking_reload_waits_for_the_next_part(rig: Rig) -> None:
    half = len(rig.frames) // 2
    rig.publish(rig.frames[:half])
    await _settle()
    text = (await rig.get("media.m3u8"))[2].decode()
    hint = re.search(r'PRELOAD-HINT:TYPE=PART,URI="part(\d+)\.(\d+)\.m4s"', text)
    assert hint
    msn, part = int(hint.group(1)), int(hint.group(2))
    request = asyncio.ensure_future(rig.get(f"media.m3u8?_HLS_msn={msn}&_HLS_part={part}"))
    hinted = asyncio.ensure_future(rig.get(f"part{msn}.{part}.m4s"))
    await asyncio.sleep(0.2)
    assert not request.done() and not hinted.done()  # held until the part exists
    rig.publish(rig.frames[half:])
    status, _, body = await asyncio.wait_for(request, 5)
    assert status == 200 and f"part{msn}.{part}.m4s".encode() in body
    status, _, part_body = await asyncio.wait_for(hinted, 5)
    assert status == 200 and b"moof" in part_body[:64]
    far = await rig.get(f"media.m3u8?_HLS_msn={msn + 50}")
    assert far[0] == 400


async def test_unknown_things_are_404(rig: Rig) -> None:
    assert (await rig.get("nothing.txt"))[0] == 404
    assert (await rig.get("seg1.m4s"))[0] == 404
    async with rig.http.get(rig.base.replace("lse_1", "lse_nope") + "master.m3u8") as resp:
        assert resp.status == 404
    assert (await rig.get("media.m3u8?_HLS_part=1"))[0] == 400  # part without msn


async def test_ended_stream_lists_endlist(rig: Rig) -> None:
    rig.publish(rig.frames)
    rig.stream.end("publisher gone")
    await _settle()
    text = (await rig.get("media.m3u8"))[2].decode()
    assert text.rstrip().endswith("#EXT-X-ENDLIST")


@pytest.mark.parametrize("rig", [True], indirect=True)
async def test_private_stream_needs_a_token_carried_into_every_uri(rig: Rig) -> None:
    import time

    from server.hls import tokens

    rig.publish(rig.frames[: len(rig.frames) * 2 // 3])
    await _settle()
    assert (await rig.get("master.m3u8"))[0] == 401
    assert (await rig.get("media.m3u8?token=123.abc"))[0] == 401
    expired = tokens.mint(PLAYBACK_KEY, "lse_1", int(time.time()) - 1)
    assert (await rig.get(f"master.m3u8?token={expired}"))[0] == 401
    token = tokens.mint(PLAYBACK_KEY, "lse_1", int(time.time()) + 60)
    status, _, master = await rig.get(f"master.m3u8?token={token}")
    assert status == 200 and f"media.m3u8?token={token}".encode() in master
    text = (await rig.get(f"media.m3u8?token={token}"))[2].decode()
    segment = re.search(r"^(seg\d+\.m4s\?token=\S+)$", text, re.M)
    assert segment and token in segment.group(1)
    assert (await rig.get(segment.group(1)))[0] == 200
    assert (await rig.get(segment.group(1).split("?")[0]))[0] == 401


@pytest.mark.parametrize("rig", [2], indirect=True)
async def test_viewers_beyond_the_plan_get_429(rig: Rig) -> None:
    rig.publish(rig.frames[: len(rig.frames) // 2])
    await _settle()
    assert (await rig.get("master.m3u8", **{"User-Agent": "player-a"}))[0] == 200
    assert (await rig.get("media.m3u8", **{"User-Agent": "player-b"}))[0] == 200
    status, headers, _ = await rig.get("master.m3u8", **{"User-Agent": "player-c"})
    assert status == 429 and headers["Retry-After"] == "10"
    assert (await rig.get("media.m3u8", **{"User-Agent": "player-a"}))[0] == 200  # still in


# ---------------------------------------------------------------- the fast path itself


async def _raw(
    port: int, *requests: str, head: bool = False
) -> list[tuple[int, dict[str, str], bytes]]:
    """Send ``requests`` (paths) pipelined on one connection, the first one as HEAD with
    ``head``; their responses in order."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        heads = [f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n" for path in requests]
        if head:
            heads[0] = "HEAD" + heads[0].removeprefix("GET")
        writer.write("".join(heads).encode())
        return [await _response(reader, i == 0 and head) for i in range(len(requests))]
    finally:
        writer.close()


async def _response(
    reader: asyncio.StreamReader, head_only: bool = False
) -> tuple[int, dict[str, str], bytes]:
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode()
    lines = head.split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:] if h)}
    size = 0 if head_only else int(headers.get("content-length", "0"))
    body = await reader.readexactly(size)
    return int(lines[0].split()[1]), headers, body


def _port(rig: Rig) -> int:
    return int(rig.base.split(":")[2].split("/")[0])


def _same_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in ("date", "server", "keep-alive")}


async def test_fast_path_answers_as_aiohttp_does(
    media: tuple[list[CodecConfig], list[Frame]],
) -> None:
    """The same resources from the fast path (a fresh connection) and from aiohttp
    (after a HEAD request handed the connection over)."""
    async with _serve(media, HlsSettings(), fast=True) as rig:
        assert rig.fast is not None
        rig.publish(rig.frames[: len(rig.frames) // 2])
        await _settle()
        path = "/live/lse_1/media.m3u8"
        ((_, _, text),) = await _raw(_port(rig), path)
        listed = text.decode().split("#EXT-X-PRELOAD-HINT")[0]  # not the part being written
        names = re.findall(r'URI="([^"]+)"|^(seg\d+\.m4s)$', listed, re.M)
        paths = ["/live/lse_1/master.m3u8", path, *("/live/lse_1/" + (a or b) for a, b in names)]
        assert all(any(kind in p for p in paths) for kind in ("/init", "/seg", "/part"))
        answered = rig.fast.answered
        fast = await _raw(_port(rig), *paths)
        assert rig.fast.answered == answered + len(paths)
        slow = await _raw(_port(rig), "/live/lse_1/media.m3u8", *paths, head=True)
        assert rig.fast.answered == answered + len(paths)  # the connection was aiohttp's
        for (status, headers, body), (status2, headers2, body2) in zip(fast, slow[1:], strict=True):
            assert status == status2 == 200 and body == body2
            assert _same_headers(headers) == _same_headers(headers2)
            assert "date" in headers


async def test_held_reloads_are_answered_together_from_one_rendering(
    media: tuple[list[CodecConfig], list[Frame]],
) -> None:
    async with _serve(media, HlsSettings(), fast=True) as rig:
        assert rig.fast is not None
        half = len(rig.frames) // 2
        rig.publish(rig.frames[:half])
        await _settle()
        text = (await rig.get("media.m3u8"))[2].decode()
        hint = re.search(r'PRELOAD-HINT:TYPE=PART,URI="part(\d+)\.(\d+)\.m4s"', text)
        assert hint
        path = f"/live/lse_1/media.m3u8?_HLS_msn={hint.group(1)}&_HLS_part={hint.group(2)}"
        viewers = [asyncio.ensure_future(_raw(_port(rig), path)) for _ in range(20)]
        gone = asyncio.ensure_future(_raw(_port(rig), path))
        await asyncio.sleep(0.2)
        packager = rig.service.get("lse_1")
        assert packager is not None and len(packager.held) == 21
        gone.cancel()  # this viewer hangs up while held
        await asyncio.sleep(0.1)
        assert len(packager.held) == 20 and not any(v.done() for v in viewers)
        answered = rig.fast.answered
        rig.publish(rig.frames[half:])
        bodies = {(await asyncio.wait_for(v, 5))[0][2] for v in viewers}
        assert (
            len(bodies) == 1 and f"part{hint.group(1)}.{hint.group(2)}.m4s".encode() in bodies.pop()
        )
        assert rig.fast.answered == answered + 20 and len(packager.held) == 0


async def test_fast_connection_hands_over_at_the_first_request_it_does_not_answer(
    media: tuple[list[CodecConfig], list[Frame]],
) -> None:
    async with _serve(media, HlsSettings(), fast=True) as rig:
        assert rig.fast is not None
        rig.publish(rig.frames[: len(rig.frames) // 2])
        await _settle()
        answered = rig.fast.answered
        paths = ["media.m3u8", "nothing.txt", "media.m3u8?_HLS_msn=x", "media.m3u8"]
        responses = await _raw(_port(rig), *("/live/lse_1/" + p for p in paths))
        assert [status for status, _, _ in responses] == [200, 404, 400, 200]
        assert rig.fast.answered == answered + 1
        assert responses[0][2] == responses[3][2]


async def test_fast_path_closes_idle_keep_alive_connections(
    media: tuple[list[CodecConfig], list[Frame]],
) -> None:
    async with _serve(media, HlsSettings(), fast=True) as rig:
        assert rig.fast is not None
        rig.fast.keepalive_timeout = 0.3
        rig.publish(rig.frames[: len(rig.frames) // 2])
        await _settle()
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(rig))
        writer.write(b"GET /live/lse_1/media.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await _response(reader))[0] == 200
        assert await asyncio.wait_for(reader.read(), 2) == b""  # closed by the sweep
        writer.close()


async def test_requests_pipelined_behind_a_held_one_are_answered_in_order(
    media: tuple[list[CodecConfig], list[Frame]],
) -> None:
    """More than the read-ahead bound waits behind a held reload (reading pauses,
    then resumes): every request is answered, in order, once the part is there."""
    async with _serve(media, HlsSettings(), fast=True) as rig:
        assert rig.fast is not None
        half = len(rig.frames) // 2
        rig.publish(rig.frames[:half])
        await _settle()
        msn = _first_msn(rig)
        edge = rig.service.get("lse_1")
        assert edge is not None
        part = edge.segmenter.edge().last_part + 1
        held = f"/live/lse_1/media.m3u8?_HLS_msn={msn}&_HLS_part={part}"
        assert part >= 1
        plain = [f"/live/lse_1/part{msn}.0.m4s?pad={'a' * 2000}"] * 100
        assert len("".join(plain)) > 2 * MAX_BUFFERED
        answered = rig.fast.answered
        replies = asyncio.ensure_future(_raw(_port(rig), held, *plain))
        await asyncio.sleep(0.3)
        assert not replies.done()
        rig.publish(rig.frames[half:])
        responses = await asyncio.wait_for(replies, 20)
        assert f"part{msn}.{part}.m4s".encode() in responses[0][2]
        assert [r[0] for r in responses] == [200] * len(responses)
        assert rig.fast.answered == answered + len(responses)


async def _chunked(reader: asyncio.StreamReader) -> tuple[dict[str, str], list[bytes]]:
    """A chunked response's headers and chunks (IncompleteReadError if it is cut)."""
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode()
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in head.split("\r\n"))}
    chunks = []
    while size := int(await asyncio.wait_for(reader.readuntil(b"\r\n"), 10), 16):
        chunks.append(await reader.readexactly(size))
        assert await reader.readexactly(2) == b"\r\n"
    assert await reader.readexactly(2) == b"\r\n"
    return headers, chunks


async def _open_hinted(
    rig: Rig, half: int
) -> tuple[str, asyncio.StreamReader, asyncio.StreamWriter]:
    rig.publish(rig.frames[:half])
    await _settle()
    text = (await rig.get("media.m3u8"))[2].decode()
    hint = re.search(r'PRELOAD-HINT:TYPE=PART,URI="(part[\d.]+m4s)"', text)
    assert hint
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(rig))
    writer.write(f"GET /live/lse_1/{hint.group(1)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return hint.group(1), reader, writer


async def test_hinted_part_is_streamed_chunk_by_chunk_then_the_connection_goes_on(
    media: tuple[list[CodecConfig], list[Frame]],
) -> None:
    async with _serve(media, HlsSettings(), fast=True) as rig:
        assert rig.fast is not None
        packager = rig.service.get("lse_1")
        assert packager is not None
        half = len(rig.frames) // 2
        answered = rig.fast.answered
        name, reader, writer = await _open_hinted(rig, half)
        streamed = asyncio.ensure_future(_chunked(reader))
        await asyncio.sleep(0.1)
        assert packager.streaming == 1 and len(packager.feeding) == 1
        for frame in rig.frames[half:]:  # frame by frame: a chunk per video frame
            rig.stream.publish(frame)
            await asyncio.sleep(0)
        headers, chunks = await asyncio.wait_for(streamed, 5)
        assert headers["transfer-encoding"] == "chunked" and "immutable" in headers["cache-control"]
        assert len(chunks) > 1 and b"".join(chunks) == (await rig.get(name))[2]
        assert packager.streaming == 0 and len(packager.feeding) == 0
        writer.write(b"GET /live/lse_1/media.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await _response(reader))[0] == 200  # the same connection, served on
        assert rig.fast.answered == answered + 4  # playlist, stream, whole part, playlist
        writer.close()


@pytest.mark.serial
async def test_hinted_part_that_never_completes_is_cut(
    media: tuple[list[CodecConfig], list[Frame]],
) -> None:
    settings = HlsSettings(target_duration=1.0, part_target=0.5)
    async with _serve(media, settings, fast=True) as rig:
        packager = rig.service.get("lse_1")
        assert packager is not None
        _, reader, writer = await _open_hinted(rig, len(rig.frames) // 2)
        with pytest.raises(asyncio.IncompleteReadError):  # cut, never a clean end
            await asyncio.wait_for(_chunked(reader), 6)
        assert packager.streaming == 0 and len(packager.feeding) == 0
        writer.close()
