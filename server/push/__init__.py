"""Sending streams elsewhere: the RTMP(S) and SRT publisher clients and the
destination manager that runs one pusher per destination.

:class:`RtmpPublisher` and :class:`SrtPublisher` are the asyncio adapters around the
client/caller roles of :mod:`server.protocols.rtmp` and :mod:`server.protocols.srt`,
with the same surface (:class:`~server.push.ports.MediaPublisher`: ``connect``,
``send_config``/``send_frame``, ``batch_writer``, ``drain``, ``close``; refusals derive
from :class:`~server.push.ports.Refused`), so a pusher can drive either; the
benchmarks' load generators use the same classes, so what we measure is what we ship.
"""

from .ports import MediaPublisher, Refused
from .rtmp_client import (
    PublishRefused,
    RtmpClientError,
    RtmpPublisher,
    RtmpUrl,
    parse_rtmp_url,
)
from .srt_client import (
    SrtClientError,
    SrtPublisher,
    SrtPublishRefused,
    SrtUrl,
    parse_srt_url,
)

__all__ = [
    "MediaPublisher",
    "PublishRefused",
    "Refused",
    "RtmpClientError",
    "RtmpPublisher",
    "RtmpUrl",
    "SrtClientError",
    "SrtPublishRefused",
    "SrtPublisher",
    "SrtUrl",
    "parse_rtmp_url",
    "parse_srt_url",
]
