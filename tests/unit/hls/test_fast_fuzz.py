"""Property tests of the LL-HLS fast path's request parsing (``server.hls.fast``), no sockets.

A real packager serves a few seconds of media; a fake transport records what the fast
path writes and a fake inner protocol (aiohttp's, in the differential test the real one)
what it is handed. Whatever bytes arrive, in whatever pieces:

* nothing raises out of the protocol;
* the inner protocol gets exactly the input after the request heads the fast path
  answered (or holds), starting at a request boundary, and the fast path writes nothing
  once it has handed over;
* every response the fast path writes is a well-formed HTTP/1.1 response;
* a request the fast path answers gets the status and body aiohttp alone gives it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from aiohttp import web
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from server.bus import Registry, Stream
from server.hls import http as hls_http
from server.hls import tokens
from server.hls.fast import MAX_HEAD, FastHls, FastProtocol
from server.hls.packager import HlsPackager, HlsService, PlaybackInfo
from server.settings import HlsSettings
from tests.unit.media.avsource import media

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,  # CI runs the same examples every time
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
KEY = b"k" * 32
T = TypeVar("T")
EDGE, PRIVATE = "lse_1", "lse_2"


# ---------------------------------------------------------------------------- fakes


class FakeTransport(asyncio.Transport):
    """Records writes, close and read pausing."""

    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()
        self.writes = 0
        self.closed = False
        self.reading = True
        self.written_after_close = False

    def write(self, data: Any) -> None:
        self.written_after_close |= self.closed
        self.out += bytes(data)
        self.writes += 1

    def writelines(self, list_of_data: Any) -> None:
        self.written_after_close |= self.closed
        for data in list_of_data:
            self.out += bytes(data)
        self.writes += 1

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("203.0.113.7", 40000) if name == "peername" else default

    def get_write_buffer_size(self) -> int:
        return 0


class FakeInner(asyncio.Protocol):
    """Stands for aiohttp's protocol: what it was handed, and when."""

    def __init__(self, transport: FakeTransport) -> None:
        self.transport = transport
        self.made = False
        self.writes_at_hand_over = -1
        self.data = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert transport is self.transport and not self.made
        self.made = True
        self.writes_at_hand_over = self.transport.writes

    def data_received(self, data: bytes) -> None:
        assert self.made
        self.data += data


# ---------------------------------------------------------------------------- the rig


@dataclass
class Rig:
    loop: asyncio.AbstractEventLoop
    service: HlsService
    packager: HlsPackager
    runner: web.AppRunner
    fast: FastHls
    names: list[str]  # complete resources: init, segments, parts
    streams: list[Stream]  # the rest of the media is not published yet
    hinted: str
    msn: int  # the open segment
    token: str

    def run(self, stream: bytes | Sequence[bytes | str], **kw: Any) -> Outcome:
        return self.loop.run_until_complete(_feed(self, stream, **kw))


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    loop = asyncio.new_event_loop()
    built = loop.run_until_complete(_build())
    server_log = logging.getLogger("aiohttp.server")  # a traceback per 400 it answers
    level, server_log.level = server_log.level, logging.CRITICAL
    try:
        yield built
    finally:
        server_log.setLevel(level)
        loop.run_until_complete(built.service.close())
        loop.run_until_complete(built.runner.cleanup())
        loop.close()


async def _build() -> Rig:
    source = media(seconds=4)
    service = HlsService(HlsSettings(), playback_key=KEY)
    packagers, streams = [], []
    for number, edge in enumerate((EDGE, PRIVATE)):
        stream = Registry().create(f"ls_{number}")
        streams.append(stream)
        for config in source.configs:
            stream.set_config(config)
        info = PlaybackInfo(f"ls_{number}", edge, low_latency=True, private=edge == PRIVATE)
        packagers.append(service.start(info, stream))
        await asyncio.sleep(0)
        for frame in source.frames[: len(source.frames) * 5 // 8]:  # 2.5 s: a part open
            stream.publish(frame)
    packager = packagers[0]
    for _ in range(100):
        await asyncio.sleep(0.01)
        if all(p.segmenter.preload_hint is not None for p in packagers):
            break
    app = web.Application()
    hls_http.mount(app, service)
    runner = web.AppRunner(app)
    await runner.setup()
    text = packager.segmenter.media_playlist()
    assert text is not None and packager.segmenter.has_segment
    listed = text.split("#EXT-X-PRELOAD-HINT")[0]
    names = [a or b for a, b in re.findall(r'URI="([^"]+)"|^(seg\d+\.m4s)$', listed, re.M)]
    hinted = re.search(r'PRELOAD-HINT:TYPE=PART,URI="([^"]+)"', text)
    assert hinted and any(n.startswith("part") for n in names)
    msn = packager.segmenter.edge().last_msn + 1
    token = tokens.mint(KEY, PRIVATE, int(time.time()) + 3600)
    fast = FastHls(service, 10.0)
    loop = asyncio.get_running_loop()
    return Rig(loop, service, packager, runner, fast, names, streams, hinted.group(1), msn, token)


# ---------------------------------------------------------------------------- driving


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Outcome:
    stream: bytes
    responses: list[Response]
    partial: bool  # a response still being written (a streamed part)
    inner: bytes | None  # what aiohttp's protocol got (None: never handed over)
    answered: int
    closed: bool
    held: bool


async def _feed(
    rig: Rig,
    pieces: bytes | Sequence[bytes | str],
    boundaries: Sequence[int] | None = None,
) -> Outcome:
    """Feed the pieces (bytes; "pause"/"resume" of writing) and check the invariants."""
    transport = FakeTransport()
    inners: list[FakeInner] = []

    def make_inner() -> asyncio.Protocol:
        inners.append(FakeInner(transport))
        return inners[-1]

    protocol = rig.fast.factory(make_inner)()
    assert isinstance(protocol, FastProtocol)
    before = rig.fast.answered
    protocol.connection_made(transport)
    stream = b""
    for piece in [pieces] if isinstance(pieces, bytes) else pieces:
        if piece == "pause":
            protocol.pause_writing()
        elif piece == "resume":
            protocol.resume_writing()
        elif isinstance(piece, bytes):
            stream += piece
            protocol.data_received(piece)
    try:
        return _check(rig, protocol, transport, inners, stream, before, boundaries)
    finally:
        protocol.connection_lost(None)
        assert protocol.held is None


def _check(
    rig: Rig,
    protocol: FastProtocol,
    transport: FakeTransport,
    inners: list[FakeInner],
    stream: bytes,
    before: int,
    boundaries: Sequence[int] | None,
) -> Outcome:
    answered = rig.fast.answered - before
    held = protocol.held
    streaming = held is not None and type(held).__name__ == "_Streaming"
    assert len(inners) <= 1
    inner = inners[0] if inners else None
    written = bytes(transport.out)
    if inner is not None:  # nothing written once aiohttp has the connection
        assert transport.writes == inner.writes_at_hand_over
        assert transport.reading  # aiohttp's parser does its own flow control
        assert held is None
    assert not transport.written_after_close
    responses, rest = parse_responses(written)
    partial = bool(rest)
    if partial:
        assert streaming or transport.closed, rest[:200]
        check_partial_chunked(rest)
    # a held reload is consumed but not yet counted; a streamed part counts at once
    consumed = answered + (held is not None and not streaming)
    assert len(responses) + (streaming and partial) == answered or transport.closed
    start = nth_boundary(stream, consumed)
    if boundaries is not None:  # each head answered is exactly one request sent
        ends = [nth_boundary(stream, k) for k in range(consumed + 1)]
        assert ends == list(boundaries[: consumed + 1]), (ends, boundaries)
    received = bytes(inner.data) if inner is not None else b""
    assert received + protocol._buffer == stream[start:]  # nothing lost, doubled, reordered
    if inner is None and held is None and not transport.closed:
        assert protocol._buffer.find(b"\r\n\r\n") < 0 or protocol._paused
        assert transport.reading or protocol._paused
    inner_bytes = received if inner is not None else None
    closed = transport.closed
    return Outcome(stream, responses, partial, inner_bytes, answered, closed, held is not None)


def nth_boundary(stream: bytes, n: int) -> int:
    """Where the fast path's ``n``-th consumed head ends (its ``\\r\\n\\r\\n`` included)."""
    position = 0
    for _ in range(n):
        found = stream.find(b"\r\n\r\n", position)
        assert found >= 0
        position = found + 4
    return position


# ---------------------------------------------------------------------------- a strict parser

_STATUS = re.compile(rb"HTTP/1\.1 ([1-5]\d\d) [A-Za-z][A-Za-z -]*")
_FIELD = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+): ([!-~](?:[ !-~]*[!-~])?)")


def parse_responses(data: bytes) -> tuple[list[Response], bytes]:
    """Complete responses, and what follows them (a response still being written)."""
    responses: list[Response] = []
    while data:
        parsed = _parse_one(data)
        if parsed is None:
            break
        response, data = parsed
        responses.append(response)
    return responses, data


def _parse_one(data: bytes) -> tuple[Response, bytes] | None:
    end = data.find(b"\r\n\r\n")
    if end < 0:
        assert len(data) < MAX_HEAD and b"\n\n" not in data, data[:200]
        return None
    lines = data[:end].split(b"\r\n")
    status = _STATUS.fullmatch(lines[0])
    assert status, lines[0]
    headers: dict[str, str] = {}
    for line in lines[1:]:
        match = _FIELD.fullmatch(line)
        assert match, line
        name = match[1].decode().lower()
        assert name not in headers, name
        headers[name] = match[2].decode()
    assert "date" in headers and "content-type" in headers
    rest = data[end + 4 :]
    if "transfer-encoding" in headers:
        assert headers["transfer-encoding"] == "chunked" and "content-length" not in headers
        unchunked = _dechunk(rest)
        if unchunked is None:
            return None
        body, rest = unchunked
    else:
        assert re.fullmatch(r"0|[1-9]\d*", headers["content-length"])
        size = int(headers["content-length"])
        if len(rest) < size:
            return None
        body, rest = rest[:size], rest[size:]
    return Response(int(status[1]), headers, body), rest


def _dechunk(data: bytes) -> tuple[bytes, bytes] | None:
    body = b""
    while True:
        line_end = data.find(b"\r\n")
        if line_end < 0:
            return None
        assert re.fullmatch(rb"[0-9a-f]+", data[:line_end]), data[:line_end]
        size = int(data[:line_end], 16)
        data = data[line_end + 2 :]
        if size == 0:
            if len(data) < 2:
                return None
            assert data[:2] == b"\r\n"  # no trailers
            return body, data[2:]
        if len(data) < size + 2:
            return None
        assert data[size : size + 2] == b"\r\n"
        body, data = body + data[:size], data[size + 2 :]


def check_partial_chunked(data: bytes) -> None:
    """A streamed part cut short: a head and whole chunks so far."""
    end = data.find(b"\r\n\r\n")
    assert end > 0 and b"transfer-encoding: chunked" in data[:end].lower()
    data = data[end + 4 :]
    while data:
        line_end = data.find(b"\r\n")
        size = int(data[:line_end], 16)
        assert size > 0 and data[line_end + 2 + size : line_end + 4 + size] == b"\r\n"
        data = data[line_end + 4 + size :]


# ---------------------------------------------------------------------------- requests
# Requests are drawn as templates (``<MSN>``, ``<TOKEN>``, ``<N3>``: the open segment's
# number, a viewer token, the 4th listed resource ...) filled in from the rig, so that
# regression examples can be written as plain bytes.

_TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_NUMBERS = ["<MSN-1>", "0", "-1", "10" * 7, "9" * 40, "\u00b2", "", "0x1", " 1", "<MSN+40>"]
_WAITING = ["<MSN>", "<MSN+1>"]  # blocking reloads held (a while) by both paths
_QUERIES = [
    "",
    "?_HLS_msn={}",
    "?_HLS_msn={}&_HLS_part={}",
    "?_HLS_part={}",
    "?_HLS_msn={}&_HLS_skip=YES",
    "?_HLS_skip={}",
    "?_HLS_skip=v2",
    "?token=<TOKEN>",
    "?token=1.abc",
    "?_HLS_msn={}&_HLS_msn={}",
    "?a:b=c",
    "?",
    "?&&=&",
]


def fill(rig: Rig, template: bytes) -> bytes:
    msn = rig.msn
    for key, value in (
        ("<MSN-1>", msn - 1),
        ("<MSN+1>", msn + 1),
        ("<MSN+40>", msn + 40),
        ("<MSN>", msn),
        ("<TOKEN>", rig.token),
        ("<HINT>", rig.hinted),
        ("<HPART>", rig.hinted.split(".")[1]),
    ):
        template = template.replace(key.encode(), str(value).encode())
    return re.sub(rb"<N(\d)>", lambda m: rig.names[int(m[1]) % len(rig.names)].encode(), template)


class Noise:
    """Draws a clean choice, or in a noisy request now and then a bad one."""

    def __init__(self, draw: st.DrawFn, noisy: bool) -> None:
        self.draw = draw
        self.noisy = noisy

    def __call__(self, good: T, *bad: T) -> T:
        if not self.noisy or not bad:
            return good
        chosen: T = self.draw(st.sampled_from([good] * 3 + list(bad)))
        return chosen


@st.composite
def targets(draw: st.DrawFn, noise: Noise, waits: bool = True) -> str:
    """A request target: mostly resources the fast path serves, some it must not."""
    numbers = st.sampled_from(_NUMBERS + (_WAITING if waits else []))
    query = draw(st.sampled_from(_QUERIES)).format(draw(numbers), draw(numbers))
    names = ["media.m3u8" + query] * 3 + ["master.m3u8" + query]
    names += [f"<N{i}>" for i in range(10)] + ["seg1.m4s", "init99.mp4", "nothing.txt", ""]
    if waits:
        names += ["<HINT>", "part<MSN>.40.m4s"]
    name = draw(st.sampled_from(names))
    edge = noise(EDGE, PRIVATE, "lse_nope", f"{EDGE}/r1", "")
    if edge == PRIVATE and "token=" not in name and draw(st.booleans()):
        name += ("&" if "?" in name else "?") + "token=<TOKEN>"
    target = noise("/live/{}/{}", "/live//{}/{}", "/x/{}/{}").format(edge, name)
    mutation = noise("none", "percent", "plus", "unicode", "hash", "ctl")
    if mutation != "none":
        at = draw(st.integers(0, len(target)))
        insert = {
            "percent": "%6d",
            "plus": "+",
            "unicode": draw(st.characters(min_codepoint=0x80, exclude_categories=["Cs"])),
            "hash": "#",
            "ctl": draw(st.characters(max_codepoint=0x1F) | st.just("\x7f")),
        }[mutation]
        target = target[:at] + insert + target[at:]
    return target


_HEADERS = [
    ("User-Agent", "hls.js/1.5"),
    ("Accept", "*/*"),
    ("Connection", "keep-alive"),
    ("Origin", "https://player.example"),
]
_BAD_HEADERS = [
    ("Connection", "close"),
    ("Connection", "Keep-Alive"),
    ("Range", "bytes=0-1"),
    ("Content-Length", "0"),
    ("Transfer-Encoding", "chunked"),
    ("Expect", "100-continue"),
    ("Upgrade", "h2c"),
    ("Host", "y"),
]


@st.composite
def header_lines(draw: st.DrawFn, noise: Noise) -> list[bytes]:
    """Header lines (each with its terminator): known ones in random case and spacing,
    obs-fold, bare LF or CR, NUL, non-ASCII, bad tokens, a huge one."""
    lines = []
    if noise(True, False):
        lines.append(b"Host: x\r\n")
    for _ in range(draw(st.integers(0, 3))):
        kind = noise("known", "bad", "random", "fold", "huge")
        if kind == "random":
            name = draw(st.text(_TOKEN_CHARS, min_size=1, max_size=8)).encode()
            if draw(st.booleans()):
                name = draw(st.binary(min_size=1, max_size=6))
            value = draw(st.binary(max_size=12))
        elif kind == "huge":
            name, value = b"X-Pad", b"a" * draw(st.sampled_from([100, 4000, MAX_HEAD]))
        else:
            known, text = draw(st.sampled_from(_HEADERS if kind == "known" else _BAD_HEADERS))
            upper = draw(st.lists(st.booleans(), min_size=len(known), max_size=len(known)))
            name = "".join(
                c.upper() if u else c.lower() for c, u in zip(known, upper, strict=True)
            ).encode()
            value = text.encode()
        before = draw(st.sampled_from([b" ", b"", b"  ", b"\t"]))
        after = noise(b"", b" ", b"\t", b"\x00", b"\x7f", b"\xff")
        colon = noise(b":", b" :", b"", b"::")
        end = noise(b"\r\n", b"\n", b"\r", b"\r\n ", b"\x00\r\n")
        fold = b"\r\n  folded" if kind == "fold" else b""
        lines.append(name + colon + before + value + after + fold + end)
    return lines


@st.composite
def requests(draw: st.DrawFn, waits: bool = True) -> bytes:
    """A GET head, or (a noisy one) with a few things wrong."""
    noise = Noise(draw, draw(st.booleans()))
    method = noise("GET", "HEAD", "POST", "get", "GET ")
    version = noise("HTTP/1.1", "HTTP/1.0", "http/1.1", "HTTP/2")
    target = draw(targets(noise, waits))
    sep = noise(" ", "  ", "\t")
    start = f"{method}{sep}{target}{sep}{version}".encode()
    end = noise(b"\r\n", b"\n")
    last = noise(b"\r\n", b"\n", b"")
    return start + end + b"".join(draw(header_lines(noise))) + last


@dataclass
class Pipeline:
    """Request heads (templates), a tail of junk, where to cut and pause writing."""

    heads: list[bytes]
    tail: bytes = b""
    cuts: list[tuple[int, str]] = field(default_factory=list)

    def make(self, rig: Rig) -> tuple[list[bytes | str], list[int]]:
        heads = [fill(rig, head) for head in self.heads]
        stream = b"".join(heads) + self.tail
        boundaries = [0]
        for head in heads:
            boundaries.append(boundaries[-1] + len(head))
        pieces: list[bytes | str] = []
        done = 0
        for at, then in sorted((min(at, len(stream)), then) for at, then in self.cuts):
            pieces += (stream[done:at], then)
            done = at
        pieces.append(stream[done:])
        return pieces, boundaries


def pipelines(waits: bool = True) -> st.SearchStrategy[Pipeline]:
    cuts = st.tuples(st.integers(0, 12_000), st.sampled_from(["", "", "", "", "pause", "resume"]))
    return st.builds(
        Pipeline,
        st.lists(requests(waits), max_size=6),
        st.just(b"") | st.binary(max_size=40),
        st.lists(cuts, max_size=8),
    )


def _get(*targets: str, headers: str = "Host: x\r\n") -> Pipeline:
    return Pipeline([f"GET {t} HTTP/1.1\r\n{headers}\r\n".encode() for t in targets])


# ---------------------------------------------------------------------------- properties


@FUZZ
@given(data=st.binary(max_size=400), cut=st.integers(0, 400))
def test_arbitrary_bytes_are_handed_over_intact(rig: Rig, data: bytes, cut: int) -> None:
    rig.run([data[:cut], data[cut:]])


@FUZZ
@given(pipeline=pipelines())
@example(  # a bare LF ended a header: two requests were read (and answered) as one
    pipeline=Pipeline(
        [
            f"GET /live/{EDGE}/media.m3u8 HTTP/1.1\r\nHost: x\r\nX: y\n\r\n".encode(),
            f"GET /live/{EDGE}/<N0>?a:b HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
        ]
    )
)
def test_mutated_request_streams_keep_every_byte_and_boundary(rig: Rig, pipeline: Pipeline) -> None:
    pieces, boundaries = pipeline.make(rig)
    outcome = rig.run(pieces, boundaries=boundaries)
    event(f"answered here: {min(outcome.answered, 3)}")
    event("handed over" if outcome.inner is not None else "kept")
    event("held" if outcome.held else "not held")


@FUZZ
@given(data=st.data())
def test_mutations_of_valid_heads_never_escape(rig: Rig, data: st.DataObject) -> None:
    """Random bytes flipped, inserted or removed in a valid pipeline."""
    names = st.lists(st.sampled_from([*rig.names, "media.m3u8"]), max_size=4)
    stream = bytearray(
        b"".join(
            f"GET /live/{EDGE}/{name} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            for name in data.draw(names)
        )
    )
    for _ in range(data.draw(st.integers(0, 4))):
        at = data.draw(st.integers(0, len(stream)))
        byte = data.draw(st.sampled_from([0, 9, 10, 13, 32, 37, 58, 63, 0x7F, 0x80, 0xFF]))
        action = data.draw(st.sampled_from(["set", "insert", "delete"]))
        if action == "insert" or not stream or at == len(stream):
            stream[at:at] = bytes([byte])
        elif action == "set":
            stream[at] = byte
        else:
            del stream[at]
    rig.run(bytes(stream))


@settings(FUZZ, max_examples=20)
@given(pipeline=pipelines())
def test_requests_behind_a_held_one_are_answered_in_order_once_it_is(pipeline: Pipeline) -> None:
    """The hinted part is streamed as it is written, a blocking reload for it and the
    pipeline wait behind it in the buffer; then the rest of the media is published (a
    fresh packager per example: its media is used up)."""
    loop = asyncio.new_event_loop()
    rig = loop.run_until_complete(_build())
    try:
        held = _get(
            f"/live/{EDGE}/<HINT>", f"/live/{EDGE}/media.m3u8?_HLS_msn=<MSN>&_HLS_part=<HPART>"
        )
        pieces, boundaries = Pipeline(held.heads + pipeline.heads, pipeline.tail).make(rig)
        stream = b"".join(p for p in pieces if isinstance(p, bytes))
        loop.run_until_complete(_release(rig, stream, boundaries))
    finally:
        loop.run_until_complete(rig.service.close())
        loop.run_until_complete(rig.runner.cleanup())
        loop.close()


async def _release(rig: Rig, stream: bytes, boundaries: list[int]) -> None:
    transport = FakeTransport()
    inners: list[FakeInner] = []

    def make_inner() -> asyncio.Protocol:
        inners.append(FakeInner(transport))
        return inners[-1]

    protocol = rig.fast.factory(make_inner)()
    assert isinstance(protocol, FastProtocol)
    protocol.connection_made(transport)
    protocol.data_received(stream)
    assert protocol.held is not None and rig.fast.answered == 1  # the part being streamed
    for frame in media(seconds=4).frames[len(media(seconds=4).frames) * 5 // 8 :]:
        rig.streams[0].publish(frame)
        await asyncio.sleep(0)
    for _ in range(100):
        if protocol.held is None:
            break
        await asyncio.sleep(0.01)
    try:
        outcome = _check(rig, protocol, transport, inners, stream, 0, boundaries)
    finally:
        protocol.connection_lost(None)
    part, playlist = outcome.responses[:2]
    assert playlist.status == 200 and rig.hinted.encode() in playlist.body
    assert part.status == 200 and part.headers["transfer-encoding"] == "chunked"
    assert part.body[4:8] == b"moof" and not outcome.partial


def test_a_valid_pipeline_is_answered_here(rig: Rig) -> None:
    """The properties above must see the answering side too (a test that cannot fail
    is a defect): valid heads are all answered by the fast path."""
    paths = [f"/live/{EDGE}/{p}" for p in ["media.m3u8", "master.m3u8", *rig.names]]
    pieces, boundaries = _get(*paths).make(rig)
    outcome = rig.run([pieces[0][:7], pieces[0][7:]], boundaries=boundaries)
    assert outcome.inner is None and outcome.answered == len(paths)
    assert [r.status for r in outcome.responses] == [200] * len(paths)


# ---------------------------------------------------------------------------- differential


async def _through(rig: Rig, stream: bytes, fast: bool, count: int = 1) -> list[tuple[int, bytes]]:
    """Statuses and bodies of the responses to ``stream`` on one connection, from aiohttp
    alone or with the fast path in front of it."""
    transport = FakeTransport()
    server = rig.runner.server
    assert server is not None
    protocol = rig.fast.factory(server)() if fast else server()
    protocol.connection_made(transport)
    protocol.data_received(stream)
    found: list[tuple[int, bytes]] = []
    after_close = 0  # aiohttp may close before its handler task writes the 400
    for attempt in range(400):
        found = _loose(bytes(transport.out))
        after_close += transport.closed
        if len(found) >= count or after_close > 20:
            break
        await asyncio.sleep(0 if attempt < 50 or transport.closed else 0.001)
    for _ in range(3):  # aiohttp's handler task starts before the connection goes
        await asyncio.sleep(0)
    protocol.connection_lost(None)
    return found


def _loose(data: bytes) -> list[tuple[int, bytes]]:
    """Status and body of each complete response (aiohttp's own 400 is HTTP/1.0)."""
    found = []
    while (end := data.find(b"\r\n\r\n")) >= 0:
        lines = data[:end].split(b"\r\n")
        fields = {
            k.strip().lower(): v.strip() for k, _, v in (h.partition(b":") for h in lines[1:])
        }
        data = data[end + 4 :]
        if fields.get(b"transfer-encoding") == b"chunked":
            unchunked = _dechunk(data)
            if unchunked is None:
                break
            body, data = unchunked
        else:
            size = int(fields.get(b"content-length", b"0"))
            if len(data) < size:
                break
            body, data = data[:size], data[size:]
        found.append((int(lines[0].split()[1]), body))
    return found


@settings(FUZZ, max_examples=60)
@given(pipeline=pipelines(waits=False))
# Requests aiohttp refuses with 400 were answered 200 here:
@example(pipeline=_get(f"/live/{EDGE}/media.m3u8", headers=""))  # no Host
@example(pipeline=_get(f"/live/{EDGE}/media.m3u8", headers="Host: x\r\nHost: x\r\n"))
@example(pipeline=_get(f"/live/{EDGE}/media.m3u8?a\x01"))  # a control character
@example(pipeline=_get(f"/live/{EDGE}/media.m3u8", headers="Host: x\r\nX: a\x00b\r\n"))
@example(pipeline=_get(f"/live/{EDGE}/media.m3u8", headers="Host: x\r\nX: a\x7f\r\n"))
@example(pipeline=_get(f"/live/{EDGE}/media.m3u8", headers="Host: x\r\nX Y: z\r\n"))
@example(pipeline=_get(f"/live/{EDGE}/media.m3u8", headers="Host: x\r\nX: y\nZ: w\r\n"))
@example(pipeline=_get(f"/live/{EDGE}/<N1>", headers="Host: x\r\n" + "User-Agent: a\r\n" * 2))
@example(pipeline=_get(f"/live/{EDGE}/<N2>", headers="Host: x\r\n" + "X: y\r\n" * 128))
def test_answers_are_aiohttps(rig: Rig, pipeline: Pipeline) -> None:
    """Each request that does not wait, on its own connection through the fast path and
    through aiohttp alone. (Not pipelined: aiohttp drops the requests before a bad one
    that arrive with it, while the fast path has answered them.)"""
    for head in pipeline.heads:
        request = fill(rig, head)
        if b"\r\n\r\n" not in request and b"\n\n" not in request:
            continue  # a head not complete yet: aiohttp may refuse it early, never answer it
        slow = rig.loop.run_until_complete(_through(rig, request, False))
        answered = rig.fast.answered
        fast = rig.loop.run_until_complete(_through(rig, request, True))
        event(f"answered here: {rig.fast.answered - answered}")
        assert fast == slow, request
