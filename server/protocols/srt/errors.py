"""The two kinds of failure, kept apart (h11's Local/Remote split).

``ProtocolError`` means *the peer* broke SRT: it is the only exception that peer
input may cause inside the parsers. The connection and the listener never let it
escape: during a caller handshake it becomes ``ConnectionFailed``; on an established
connection the offending datagram is dropped and counted (UDP datagrams are
independent, so one corrupt or spoofed datagram must not kill a live stream).
``LocalProtocolError`` means *our* code misused the API (sending before the
connection is up); it is a bug in the caller and is raised normally.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """The peer sent something SRT does not allow (or that breaks one of our limits)."""


class LocalProtocolError(Exception):
    """The local application called the API in a state where the call makes no sense."""


class KeyMaterialError(ProtocolError):
    """Key material could not be unwrapped: the two sides' passphrases differ."""
