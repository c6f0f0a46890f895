"""Events an :class:`RtmpConnection` reports to its caller (frozen dataclasses).

Timestamps in events are *unwrapped* milliseconds: the 32-bit wire value extended
per (message stream, message type) so that it keeps increasing past 2**32 ms
(~49.7 days); see :class:`messages.TimestampUnwrapper`. The first value equals the
wire value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
        # One of these per media message: the generated frozen __init__ goes through
        # object.__setattr__ per field and costs about twice as much as setting the
        # slots directly. Same fields, order, equality and immutability.
        _SET_KIND(self, kind)
        _SET_TIMESTAMP(self, timestamp)
        _SET_STREAM_ID(self, stream_id)
        _SET_PAYLOAD(self, payload)


_SET_KIND, _SET_TIMESTAMP, _SET_STREAM_ID, _SET_PAYLOAD = (
    MediaReceived.__dict__[name].__set__ for name in ("kind", "timestamp", "stream_id", "payload")
)


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
