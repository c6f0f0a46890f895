"""Sending streams elsewhere: the RTMP(S) publisher client (and later the destination
manager that runs one pusher per destination).

:class:`RtmpPublisher` is the asyncio adapter around the sans-IO client role of
:mod:`server.protocols.rtmp`; the benchmarks' load generator uses the same class, so
what we measure is what we ship.
"""

from .rtmp_client import (
    PublishRefused,
    RtmpClientError,
    RtmpPublisher,
    RtmpUrl,
    parse_rtmp_url,
)

__all__ = [
    "PublishRefused",
    "RtmpClientError",
    "RtmpPublisher",
    "RtmpUrl",
    "parse_rtmp_url",
]
