"""The chunk stream (protocols.md 5.2): messages cut into chunks and reassembled.

Writer: :func:`encode_message` turns one message into wire bytes, always a fmt-0
first chunk and fmt-3 continuations, repeating the extended timestamp on every
continuation (what ffmpeg, librtmp and OBS expect). It is a pure function so that
load generators and pushers can pre-chunk a media message once and reuse it.

Reader: :class:`ChunkReader` is fed arbitrary slices of the byte stream. Payload
bytes are consumed as soon as they arrive; only an incomplete chunk *header* (at
most 18 bytes) is carried to the next call and re-parsed then, so a header split
across reads never loses bytes and nothing is copied twice. Per-chunk work is a few
``struct`` unpacks and one slice.

Timestamps here are raw 32-bit values (mod 2**32); unwrapping is the connection's job.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final

from .budget import ByteBudget
from .errors import ProtocolError

# Final: compiled, mypyc inlines these (or keeps them in C statics) instead of looking
# them up in the module dict at every use; the hot modules of the RTMP path do the same.
DEFAULT_CHUNK_SIZE: Final = 128
EXTENDED_TIMESTAMP: Final = 0xFFFFFF
MAX_CSID: Final = 65599
TYPE_SET_CHUNK_SIZE: Final = 1
TYPE_ABORT: Final = 2
_MASK32: Final = 0xFFFFFFFF

# 11-byte fmt-0 header = these 7 bytes (24-bit fields split as 16+8) + little-endian msid.
_TS_LEN_TYPE: Final = struct.Struct(">HBHBB")
_TS_ONLY: Final = struct.Struct(">HB")
_MSID: Final = struct.Struct("<I")
_U32: Final = struct.Struct(">I")


@dataclass(slots=True)
class Message:
    """One reassembled RTMP message (timestamp is the raw 32-bit value)."""

    csid: int
    type_id: int
    stream_id: int
    timestamp: int
    payload: bytes

    def __init__(
        self, csid: int, type_id: int, stream_id: int, timestamp: int, payload: bytes
    ) -> None:
        # One per message: compiled, the dataclass's generated ``__init__`` stays an
        # interpreted function (about 4 % of the ingest micro-benchmark); written out,
        # mypyc makes it stores into the native object's fields. Same fields and order.
        self.csid = csid
        self.type_id = type_id
        self.stream_id = stream_id
        self.timestamp = timestamp
        self.payload = payload


# --------------------------------------------------------------------------- writer


def encode_basic_header(fmt: int, csid: int) -> bytes:
    """The 1-, 2- or 3-byte basic header; the form is chosen by the csid range."""
    if not 0 <= fmt <= 3:
        raise ValueError("chunk fmt must be 0..3")
    if 2 <= csid <= 63:
        return bytes(((fmt << 6) | csid,))
    if 64 <= csid <= 319:
        return bytes((fmt << 6, csid - 64))
    if 320 <= csid <= MAX_CSID:
        rest = csid - 64
        return bytes(((fmt << 6) | 1, rest & 0xFF, rest >> 8))
    raise ValueError(f"chunk stream id {csid} outside 2..{MAX_CSID}")


def encode_header(
    fmt: int,
    csid: int,
    timestamp: int = 0,
    length: int = 0,
    type_id: int = 0,
    stream_id: int = 0,
) -> bytes:
    """Encode any of the four header forms; ``timestamp`` is the value (absolute for
    fmt 0, delta for 1/2, repeated extended value for 3) and gets the 0xFFFFFF marker
    plus a 4-byte extension when it does not fit 24 bits (fmt 3: pass the value to
    repeat, or 0 when the stream does not use extended timestamps)."""
    if not 0 <= length <= 0xFFFFFF:
        raise ValueError("message length must fit 24 bits")
    timestamp &= _MASK32
    basic = encode_basic_header(fmt, csid)
    ext = _U32.pack(timestamp) if timestamp >= EXTENDED_TIMESTAMP else b""
    ts = min(timestamp, EXTENDED_TIMESTAMP)
    if fmt == 0:
        body = _TS_LEN_TYPE.pack(ts >> 8, ts & 0xFF, length >> 8, length & 0xFF, type_id)
        return basic + body + _MSID.pack(stream_id) + ext
    if fmt == 1:
        return (
            basic + _TS_LEN_TYPE.pack(ts >> 8, ts & 0xFF, length >> 8, length & 0xFF, type_id) + ext
        )
    if fmt == 2:
        return basic + _TS_ONLY.pack(ts >> 8, ts & 0xFF) + ext
    return basic + ext


def encode_message(
    csid: int,
    type_id: int,
    stream_id: int,
    timestamp: int,
    payload: bytes | bytearray | memoryview,
    chunk_size: int,
) -> bytes:
    """Pre-chunk one whole message into wire bytes (fmt 0, then fmt-3 continuations).

    ``timestamp`` is taken mod 2**32. Because every message starts with a fmt-0
    header, the output does not depend on what was sent before on the same csid, so
    the bytes can be cached and written any number of times.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    view = memoryview(payload).cast("B")
    length = len(view)
    timestamp &= _MASK32
    header = encode_header(0, csid, timestamp, length, type_id, stream_id)
    if length <= chunk_size:
        return header + view
    continuation = encode_basic_header(3, csid)
    if timestamp >= EXTENDED_TIMESTAMP:
        continuation += _U32.pack(timestamp)
    parts: list[bytes | memoryview] = [header, view[:chunk_size]]
    for offset in range(chunk_size, length, chunk_size):
        parts.append(continuation)
        parts.append(view[offset : offset + chunk_size])
    return b"".join(parts)


# --------------------------------------------------------------------------- reader


@dataclass(slots=True)
class _ChunkStream:
    """What a chunk stream remembers between headers (5.2: per-csid state)."""

    csid: int
    timestamp: int = 0  # absolute timestamp of the current/last message
    ts_field: int = 0  # last header's timestamp value (delta, or absolute for fmt 0)
    length: int = 0
    type_id: int = 0
    stream_id: int = 0
    ext: bool = False  # last fmt 0/1/2 header used the extended timestamp
    got: int = 0  # payload bytes of the current message received so far
    parts: list[bytes] = field(default_factory=list)


def _stitch(
    data: bytes, p: int, end: int, length: int, size: int, csid: int
) -> tuple[bytes, int] | None:
    """The payload of a ``length``-byte message whose first chunk's payload starts at
    ``p`` and whose continuations follow back to back as 1-byte fmt-3 headers on
    ``csid`` (what encoders send), joined with one copy; and the position after it.
    None when it is not all in ``data[:end]`` or anything else comes between (another
    chunk stream, a 2-3 byte basic header): the general path handles those."""
    if length <= size:
        stop = p + length
        if stop > end:
            return None
        return data[p:stop], stop
    if csid > 63:
        return None
    stride = size + 1  # a continuation chunk: 1-byte fmt-3 basic header + payload
    continuations = (length - 1) // size
    stop = p + length + continuations
    if stop > end:
        return None
    marker = 0xC0 | csid
    for q in range(p + size, stop, stride):
        if data[q] != marker:
            return None
    view = memoryview(data)
    last = p + continuations * stride  # the final, possibly short, chunk
    parts = [view[q : q + size] for q in range(p, last, stride)]
    parts.append(view[last:stop])
    return b"".join(parts), stop


class ChunkReader:
    """Reassembles messages from a byte stream; see the module docstring.

    Set Chunk Size and Abort are applied here, the moment their message completes,
    because they change how the very next chunk must be parsed; they are still
    returned so that the connection can see them.
    """

    def __init__(
        self,
        *,
        max_message_size: int,
        max_chunk_size: int,
        max_chunk_streams: int,
        max_partial_bytes: int,
        budget: ByteBudget | None = None,
        guaranteed_bytes: int = 0,
    ) -> None:
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self.max_message_size = max_message_size
        self.max_chunk_size = max_chunk_size
        self.max_chunk_streams = max_chunk_streams
        self.max_partial_bytes = max_partial_bytes
        """Mutable: the server role raises it once a publish is accepted."""
        self.budget = budget
        self.guaranteed_bytes = guaranteed_bytes
        """Partial bytes the budget cannot refuse this reader (see :mod:`budget`)."""
        self._streams: dict[int, _ChunkStream] = {}
        self._pending = b""  # an incomplete header carried to the next feed
        self._current: _ChunkStream | None = None  # chunk whose payload is being read
        self._left = 0  # payload bytes of that chunk still to come
        self._partial_bytes = 0

    @property
    def reserved(self) -> int:
        """Announced bytes of the messages being reassembled (taken from the budget)."""
        return self._partial_bytes

    def release(self) -> None:
        """Drop every unfinished message and return its reservation: the connection is
        finished, and the shared budget must not remember it."""
        for st in self._streams.values():
            st.got = 0
            st.parts = []
        self._current = None
        self._pending = b""
        if self.budget is not None:
            self.budget.give(self._partial_bytes)
        self._partial_bytes = 0

    @property
    def buffered(self) -> int:
        """Bytes held for incomplete messages and headers (for metrics and tests)."""
        held = sum(st.got for st in self._streams.values())
        return held + len(self._pending)

    def feed(self, data: bytes, out: list[Message]) -> None:
        """Parse ``data``, appending every completed message to ``out``.

        ``out`` is a parameter (not a return value) so that the messages completed
        before a :class:`ProtocolError` are still delivered in order.
        """
        if self._pending:
            data = self._pending + data
            self._pending = b""
        pos = 0
        end = len(data)
        while pos < end:
            current = self._current
            if current is None:
                if data[pos] < 0x80:  # fmt 0 or 1: try the one-call path first
                    nxt = self._fast(data, pos, end, out)
                    if nxt >= 0:
                        pos = nxt
                        continue
                nxt = self._header(data, pos, end, out)
                if nxt < 0:
                    self._pending = data[pos:]
                    return
                pos = nxt
                started = self._current
                if started is not None and started.got == 0 and not started.ext:
                    whole = self._whole(started, data, pos, end, out)
                    if whole >= 0:
                        pos = whole
                continue
            left = self._left
            if end - pos < left:
                current.parts.append(data[pos:])
                current.got += end - pos
                self._left = left - (end - pos)
                return
            stop = pos + left
            current.got += left
            self._current = None
            if current.got == current.length:
                self._complete(current, data[pos:stop], out)
            else:
                current.parts.append(data[pos:stop])
            pos = stop

    def _fast(self, data: bytes, pos: int, end: int, out: list[Message]) -> int:
        """The common case in one call: a fmt 0/1 header with a one-byte basic header
        and no extended timestamp, on a chunk stream that is between messages, for a
        message that lies entirely in ``data`` (see :meth:`_whole`). Anything else, or
        anything that would raise, returns -1 and goes the general way, which then
        parses the same bytes with the same outcome."""
        b0 = data[pos]
        csid = b0 & 0x3F
        st = self._streams.get(csid)
        if st is None or st.got or csid < 2:
            return -1
        fmt = b0 >> 6
        p = pos + (12 if fmt == 0 else 8)
        if p > end:
            return -1
        # Byte by byte, not _TS_LEN_TYPE.unpack_from: compiled, each index is a native
        # read and the struct call with its tuple of five ints cost ~0.3 us per message
        # (interpreted it is ~0.1 us dearer; the compiled path is the one that runs).
        value = (data[pos + 1] << 16) | (data[pos + 2] << 8) | data[pos + 3]
        length = (data[pos + 4] << 16) | (data[pos + 5] << 8) | data[pos + 6]
        type_id = data[pos + 7]
        if (
            value == EXTENDED_TIMESTAMP
            or length > self.max_message_size
            or self._partial_bytes + length > self.max_partial_bytes
        ):
            return -1
        run = _stitch(data, p, end, length, self.chunk_size, csid)
        if run is None:
            return -1
        payload, stop = run
        st.length, st.type_id, st.ext, st.ts_field = length, type_id, False, value
        if fmt == 0:
            st.stream_id = (
                data[pos + 8]
                | (data[pos + 9] << 8)
                | (data[pos + 10] << 16)
                | (data[pos + 11] << 24)
            )  # little-endian, the one field RTMP sends so
            st.timestamp = value
        else:
            st.timestamp = (st.timestamp + value) & _MASK32
        if type_id in (TYPE_SET_CHUNK_SIZE, TYPE_ABORT):
            self._reserve(length)  # _complete applies it and settles the count
            self._complete(st, payload, out)
        else:
            out.append(Message(csid, type_id, st.stream_id, st.timestamp, payload))
        return stop

    def _whole(self, st: _ChunkStream, data: bytes, p: int, end: int, out: list[Message]) -> int:
        """Fast path for a message that starts at ``p`` and lies entirely in ``data`` as
        one run of chunks on its chunk stream (what encoders send): take it in one step,
        one copy, instead of a loop iteration per chunk. Returns the position after it,
        or -1 to let the general path handle it (split across reads, interleaved with
        another chunk stream, 2-3 byte basic headers)."""
        run = _stitch(data, p, end, st.length, self.chunk_size, st.csid)
        if run is None:
            return -1
        payload, stop = run
        self._current = None
        self._complete(st, payload, out)
        return stop

    def abort(self, csid: int) -> None:
        """Drop the partial message on ``csid`` (Abort message, type 2)."""
        st = self._streams.get(csid)
        if st is not None and st.got:
            self._unreserve(st.length)
            st.got = 0
            st.parts = []

    def set_chunk_size(self, size: int) -> None:
        """Apply the peer's Set Chunk Size, refusing values outside our bound."""
        if not 1 <= size <= self.max_chunk_size:
            raise ProtocolError(f"peer chunk size {size} outside 1..{self.max_chunk_size}")
        self.chunk_size = size

    def _complete(self, st: _ChunkStream, last: bytes, out: list[Message]) -> None:
        """Finish the message on ``st`` with its final slice and hand it out."""
        if st.parts:
            st.parts.append(last)
            payload = b"".join(st.parts)
            st.parts = []
        else:
            payload = last
        st.got = 0
        self._unreserve(st.length)
        type_id = st.type_id
        if type_id in (TYPE_SET_CHUNK_SIZE, TYPE_ABORT):
            if len(payload) < 4:
                raise ProtocolError(f"control message {type_id} shorter than 4 bytes")
            value = _U32.unpack_from(payload)[0]
            if type_id == TYPE_SET_CHUNK_SIZE:
                self.set_chunk_size(value)
            else:
                self.abort(value)
        out.append(Message(st.csid, type_id, st.stream_id, st.timestamp, payload))

    def _header(self, data: bytes, pos: int, end: int, out: list[Message]) -> int:
        """Parse one chunk header at ``pos``; return the payload offset, or -1 if the
        header is incomplete (nothing is changed then, so it is simply re-parsed)."""
        b0 = data[pos]
        csid = b0 & 0x3F
        p = pos + 1
        if csid == 0:
            if p >= end:
                return -1
            csid = 64 + data[p]
            p += 1
        elif csid == 1:
            if p + 2 > end:
                return -1
            csid = 64 + data[p] + (data[p + 1] << 8)
            p += 2
        fmt = b0 >> 6
        st = self._streams.get(csid)
        if fmt == 3:
            p = self._continuation(st, csid, data, p, end)
        else:
            p = self._full_header(fmt, st, csid, data, p, end)
        if p < 0:
            return -1
        st = self._streams[csid]
        remaining = st.length - st.got
        if remaining == 0:  # zero-length message: complete with its header
            self._complete(st, b"", out)
            return p
        self._current = st
        self._left = remaining if remaining < self.chunk_size else self.chunk_size
        return p

    def _continuation(
        self, st: _ChunkStream | None, csid: int, data: bytes, p: int, end: int
    ) -> int:
        """fmt 3: continue the current message, or start a new one repeating everything.

        With an extended timestamp in force, a continuation should repeat the 4-byte
        value; old encoders omit it, so it is consumed only when it matches either the
        header's value or the message timestamp (SRS's tolerant rule). A new message
        always carries it.
        """
        if st is None:
            raise ProtocolError(f"fmt 3 chunk on chunk stream {csid} without a previous header")
        new_message = st.got == 0
        delta = st.ts_field
        if st.ext:
            if p + 4 > end:
                return -1
            value = _U32.unpack_from(data, p)[0]
            if new_message:
                delta = value
                p += 4
            elif value == st.ts_field or value == st.timestamp:
                p += 4
        if new_message:
            self._begin(st)
            st.ts_field = delta
            st.timestamp = (st.timestamp + delta) & _MASK32
        return p

    def _full_header(
        self, fmt: int, st: _ChunkStream | None, csid: int, data: bytes, p: int, end: int
    ) -> int:
        """fmt 0/1/2: read the message header (and extension), then commit the state."""
        size = 11 if fmt == 0 else 7 if fmt == 1 else 3
        if p + size > end:
            return -1
        if fmt == 2:
            if st is None:
                raise ProtocolError(f"fmt 2 chunk on chunk stream {csid} without a previous header")
            hi, lo = _TS_ONLY.unpack_from(data, p)
            length, type_id, stream_id = st.length, st.type_id, st.stream_id
        else:
            hi, lo, len_hi, len_lo, type_id = _TS_LEN_TYPE.unpack_from(data, p)
            length = (len_hi << 8) | len_lo
            if fmt == 0:
                stream_id = _MSID.unpack_from(data, p + 7)[0]
            else:  # tolerated as a first header (msid 0), as librtmp and ffmpeg do
                stream_id = st.stream_id if st is not None else 0
        p += size
        value = (hi << 8) | lo
        ext = value == EXTENDED_TIMESTAMP
        if ext:
            if p + 4 > end:
                return -1
            value = _U32.unpack_from(data, p)[0]
            p += 4
        if st is None:
            st = self._new_stream(csid)
        elif st.got:
            raise ProtocolError(f"new message header on chunk stream {csid} mid-message")
        st.length, st.type_id, st.stream_id, st.ext, st.ts_field = (
            length,
            type_id,
            stream_id,
            ext,
            value,
        )
        st.timestamp = value if fmt == 0 else (st.timestamp + value) & _MASK32
        self._begin(st)
        return p

    def _new_stream(self, csid: int) -> _ChunkStream:
        if len(self._streams) >= self.max_chunk_streams:
            raise ProtocolError(f"more than {self.max_chunk_streams} chunk streams in use")
        st = self._streams[csid] = _ChunkStream(csid)
        return st

    def _begin(self, st: _ChunkStream) -> None:
        """Account for a message that starts now; refuse lengths beyond our bounds."""
        if st.length > self.max_message_size:
            raise ProtocolError(f"message of {st.length} bytes exceeds {self.max_message_size}")
        self._reserve(st.length)

    def _reserve(self, length: int) -> None:
        """Hold ``length`` more bytes of unfinished messages, within this connection's
        bound and the shared budget; on failure nothing is reserved."""
        if self._partial_bytes + length > self.max_partial_bytes:
            raise ProtocolError(
                f"more than {self.max_partial_bytes} bytes in partially received messages"
            )
        held = self._partial_bytes + length
        budget = self.budget
        if budget is not None and not budget.take(length, held <= self.guaranteed_bytes):
            raise ProtocolError("server-wide limit on partially received messages reached")
        self._partial_bytes = held

    def _unreserve(self, length: int) -> None:
        self._partial_bytes -= length
        if self.budget is not None:
            self.budget.give(length)
