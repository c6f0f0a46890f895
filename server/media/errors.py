"""The one exception the media parsers raise for malformed peer-supplied bytes."""

from __future__ import annotations


class MediaFormatError(ValueError):
    """Bytes that came from a peer (an encoder, a file, another server) are malformed.

    Parsers in ``server.media`` raise only this for bad input, never ``IndexError`` or
    ``struct.error``, so the ingest layer can tell "the peer sent garbage" (close that one
    connection, count it) from "our code has a bug" (let it crash loudly).
    """
