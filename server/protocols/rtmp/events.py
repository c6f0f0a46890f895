"""Events an :class:`RtmpConnection` reports to its caller (frozen dataclasses).

Timestamps in events are *unwrapped* milliseconds: the 32-bit wire value extended
per (message stream, message type) so that it keeps increasing past 2**32 ms
(~49.7 days); see :class:`messages.TimestampUnwrapper`. The first value equals the
wire value.

Compiled with mypyc (``server/accel_modules.txt``, issue 20): the server session
builds a ``MediaReceived`` per media message and the ingest pump reads it, both
compiled, so natively; interpreted, each was a Python-level constructor call. This
source stays the pure-Python reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import FunctionType
from typing import Literal, TypeAlias

from .amf0 import AmfValue

MediaKind: TypeAlias = Literal["audio", "video", "data"]


@dataclass(frozen=True, slots=True)
class HandshakeComplete:
    """C0..C2 / S0..S2 are done; chunks follow."""


@dataclass(frozen=True, slots=True)
class ConnectRequested:
    """Server role: the peer sent ``connect``. Answer with ``accept_connect`` or
    ``reject_connect``; ``properties`` is the whole command object (``fourCcList``,
    ``videoFourCcInfoMap``, ``capsEx``, ``flashVer``, ... included)."""

    app: str
    tc_url: str
    properties: dict[str, AmfValue] = field(hash=False)


@dataclass(frozen=True, slots=True)
class PublishRequested:
    """Server role: ``publish`` arrived. Answer with ``accept_publish`` or
    ``reject_publish``. ``name`` is the raw publish name (key plus any ``?query``)."""

    stream_id: int
    name: str
    publish_type: str
    app: str


@dataclass(frozen=True, slots=True)
class MediaReceived:
    """Server role: an audio/video message (FLV tag body, passed through untouched) or a
    data message other than onMetaData (AMF0 bytes; the AMF3 format byte is removed)."""

    kind: MediaKind
    timestamp: int
    stream_id: int
    payload: bytes

    def __init__(self, kind: MediaKind, timestamp: int, stream_id: int, payload: bytes) -> None:
        # One of these per media message. Compiled, these are stores into the native
        # object's fields (the frozen ``__setattr__`` only guards interpreted code).
        # Interpreted, that ``__setattr__`` would refuse them: the pure twin runs
        # ``_init_media_slots`` instead (installed below), as ``server.media.frame`` does.
        self.kind = kind  # type: ignore[misc]
        self.timestamp = timestamp  # type: ignore[misc]
        self.stream_id = stream_id  # type: ignore[misc]
        self.payload = payload  # type: ignore[misc]


def _init_media_slots(
    self: MediaReceived, kind: MediaKind, timestamp: int, stream_id: int, payload: bytes
) -> None:
    """The pure twin's ``MediaReceived.__init__``: sets the slots through their
    descriptors, bypassing the frozen ``__setattr__`` (the generated frozen ``__init__``
    calls ``object.__setattr__`` per field and costs about twice as much). Same fields,
    order, equality and immutability."""
    _set_kind(self, kind)
    _set_timestamp(self, timestamp)
    _set_stream_id(self, stream_id)
    _set_payload(self, payload)


INTERPRETED = isinstance(vars(MediaReceived)["__init__"], FunctionType)
"""True in the pure twin (its ``__init__`` is a Python function), False compiled."""

if INTERPRETED:
    _set_kind, _set_timestamp, _set_stream_id, _set_payload = [
        vars(MediaReceived)[name].__set__ for name in ("kind", "timestamp", "stream_id", "payload")
    ]
    _init_media_slots.__qualname__ = "MediaReceived.__init__"
    setattr(MediaReceived, "__init__", _init_media_slots)  # noqa: B010 - mypy forbids assigning a method


@dataclass(frozen=True, slots=True)
class MetadataReceived:
    """Server role: ``onMetaData`` (with or without ``@setDataFrame``), as a plain dict."""

    stream_id: int
    metadata: dict[str, AmfValue] = field(hash=False)


@dataclass(frozen=True, slots=True)
class Unpublished:
    """Server role: the publisher stopped (FCUnpublish, deleteStream or closeStream)."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class PlayRequested:
    """Server role: a player asked for ``name`` (query included) on ``stream_id``;
    answer with ``accept_play`` or ``reject_play``."""

    stream_id: int
    name: str
    app: str


@dataclass(frozen=True, slots=True)
class PlayStopped:
    """Server role: a playing client closed or deleted its stream."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class PublishStarted:
    """Client role: the server answered ``NetStream.Publish.Start``; media may flow."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class PublishFailed:
    """Client role: connect, createStream or publish was refused (or a level-"error"
    onStatus arrived later). The connection is closed."""

    code: str
    description: str


@dataclass(frozen=True, slots=True)
class ReconnectRequested:
    """Client role: E-RTMP ``NetConnection.Connect.ReconnectRequest`` (tc_url may be "")."""

    tc_url: str
    description: str


@dataclass(frozen=True, slots=True)
class ConnectionFailed:
    """The peer broke the protocol, hit a limit, or timed out. The connection is closed."""

    reason: str


@dataclass(frozen=True, slots=True)
class PeerClosed:
    """The transport reported end of stream (``receive_data(b"")``)."""


Event: TypeAlias = (
    HandshakeComplete
    | ConnectRequested
    | PublishRequested
    | MediaReceived
    | MetadataReceived
    | Unpublished
    | PlayRequested
    | PlayStopped
    | PublishStarted
    | PublishFailed
    | ReconnectRequested
    | ConnectionFailed
    | PeerClosed
)
