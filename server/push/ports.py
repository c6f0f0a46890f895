"""What the pushers need from the outside, declared here: the control plane on one
side, the protocol clients on the other.

The media plane never imports ``control_api``: the composition root hands the
manager an object satisfying :class:`DestinationSource`, and registers
:class:`PushListener` implementations (webhooks) on it. Likewise the pusher never
names a protocol: it drives a :class:`MediaPublisher` and recognises a refusal by
the :class:`Refused` base, so RTMP, SRT and a test fake are all the same to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from server.media.frame import CodecConfig, Frame
from server.transcode.ladder import SOURCE


@dataclass(frozen=True, slots=True)
class DestinationSpec:
    """One configured destination as the pusher needs it.

    ``url`` is the assembled publish URL with the stream key and passphrase in it,
    so it is kept out of ``repr``; ``redacted`` is what logs show. ``secrets`` are
    the raw values to scrub from any error text a peer sends back.
    """

    destination_id: str
    url: str = field(repr=False)
    redacted: str
    enabled: bool = True
    secrets: tuple[str, ...] = field(default=(), repr=False)
    rendition: str = SOURCE  # or a rung of the stream's ladder ("720p", ...)

    def scrub(self, text: str) -> str:
        """``text`` with every secret replaced by ``***`` (servers echo keys back)."""
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return text


class DestinationSource(Protocol):
    async def destinations(self, stream_id: str) -> list[DestinationSpec]:
        """Every destination of the stream, enabled or not, in a stable order."""


class PushListener(Protocol):
    def destination_error(
        self, environment_id: str, stream_id: str, destination_id: str, error: str
    ) -> None:
        """A destination went to ``error`` (once per outage, not per retry); must not
        block or raise. ``error`` never contains the stream key or passphrase."""


# --------------------------------------------------------------------------- publishers


class Refused(Exception):
    """The destination answered and said no (bad stream key, forbidden, wrong
    passphrase), as opposed to a network or protocol failure. Each protocol's refusal
    derives from this, so the pusher names refusals without knowing the protocol."""

    @property
    def reason(self) -> str:
        """The destination's answer, as it goes after "refused by the destination: "."""
        return str(self)


class PushStalled(Exception):
    """The destination stopped accepting data for longer than ``stall_timeout``."""


class FrameSink(Protocol):
    """Takes media one item at a time, as both publishers do."""

    def send_config(self, config: CodecConfig, timestamp_ms: int = 0) -> None: ...

    def send_frame(self, frame: Frame) -> None: ...


class BatchWriter(Protocol):
    """How a publisher wants a wake-up's worth of media handed over: the pusher adds
    items, then calls :meth:`flush` whenever :attr:`full` says so and at the end of
    each wake-up. Batching is the publisher's business (RTMP chunks a whole batch into
    one write); the pusher only has to check the transport for room after a flush."""

    @property
    def full(self) -> bool:
        """True when what is held should be written now (and the transport checked)."""

    def frame(self, frame: Frame) -> None: ...

    def config(self, config: CodecConfig, timestamp_ms: int) -> None: ...

    def flush(self) -> None: ...


class FrameByFrame:
    """The :class:`BatchWriter` of a publisher that gains nothing from batching (SRT
    muxes and paces each frame itself): every item goes out at once and counts as a
    full batch, so the pusher checks the transport for room after each one."""

    __slots__ = ("sink",)
    full = True

    def __init__(self, sink: FrameSink) -> None:
        self.sink = sink

    def frame(self, frame: Frame) -> None:
        self.sink.send_frame(frame)

    def config(self, config: CodecConfig, timestamp_ms: int) -> None:
        self.sink.send_config(config, timestamp_ms)

    def flush(self) -> None:
        pass


@runtime_checkable
class SharedSink(Protocol):
    """A publisher that takes pre-chunked RTMP bytes, so the destinations of one stream
    can share them (:mod:`server.push.fanout`): the bytes must be chunked with its
    :attr:`chunk_size` and :attr:`stream_id`. ``send_shared`` writes them as they are,
    after everything sent before; like every ``send_*`` it raises once the connection
    is gone."""

    @property
    def stream_id(self) -> int: ...

    @property
    def chunk_size(self) -> int: ...

    @property
    def writable(self) -> bool: ...

    @property
    def error(self) -> Exception | None: ...

    def send_metadata(self, metadata: Mapping[str, float | str | bool]) -> None: ...

    def send_shared(self, wire: bytes) -> None: ...


class MediaPublisher(FrameSink, Protocol):
    """What a pusher drives: one open connection to a destination, any protocol.

    ``send_*`` raise once the connection is gone; ``error`` is why it ended (a
    :class:`Refused` when the destination revoked the publish); ``writable`` is False
    while ``drain()`` would wait."""

    @property
    def bytes_sent(self) -> int: ...

    @property
    def writable(self) -> bool: ...

    @property
    def error(self) -> Exception | None: ...

    def send_metadata(self, metadata: Mapping[str, float | str | bool]) -> None: ...

    def batch_writer(self) -> BatchWriter:
        """A fresh writer for one connection's media (see :class:`BatchWriter`)."""

    async def drain(self) -> None: ...

    async def close(self, grace: float = 5.0) -> None: ...
