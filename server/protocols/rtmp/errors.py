"""The two kinds of failure, kept apart (h11's Local/Remote split).

``ProtocolError`` means *the peer* broke RTMP: it is the only exception that peer
input may cause inside the parsers, and :class:`RtmpConnection` turns it into a
``ConnectionFailed`` event instead of raising. ``LocalProtocolError`` means *our*
code misused the API (sending media before publishing, accepting a connect that
was never requested); it is a bug in the caller and is raised normally.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """The peer sent something RTMP does not allow (or that breaks one of our limits)."""


class LocalProtocolError(Exception):
    """The local application called the API in a state where the call makes no sense."""
