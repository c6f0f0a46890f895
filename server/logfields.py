"""Who a media-plane log line is about: stream, session and connection ids.

Media-plane code passes ``extra=media_fields(...)`` (or logs through a
:class:`MediaLog`), and the formatter the composition root installs prints the
three fields on every such line, so one ``grep stream_id=st_…`` follows a stream
through RTMP, ingest, HLS and push. Unknown ids are ``-``: a line from before
authentication has a connection but no stream yet. Ids only; never keys.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, MutableMapping
from typing import Any

FIELDS = ("stream_id", "session_id", "connection_id")
UNKNOWN = "-"
_connection_ids = itertools.count(1)


def new_connection_id(protocol: str) -> str:
    """A process-unique id for one network connection (``rtmp-17``); never a port."""
    return f"{protocol}-{next(_connection_ids)}"


def media_fields(
    stream_id: str | None = None, session_id: str | None = None, connection_id: str | None = None
) -> dict[str, str]:
    """The ``extra`` of a media-plane line; every field present, ``-`` when unknown."""
    return {
        "stream_id": stream_id or UNKNOWN,
        "session_id": session_id or UNKNOWN,
        "connection_id": connection_id or UNKNOWN,
    }


class MediaLog(logging.LoggerAdapter[logging.Logger]):
    """A logger bound to one connection; ``bind`` adds the stream once it is known."""

    def __init__(self, logger: logging.Logger, connection_id: str | None = None) -> None:
        super().__init__(logger, media_fields(connection_id=connection_id))

    def bind(self, stream_id: str | None = None, session_id: str | None = None) -> None:
        fields = dict(self.extra or {})
        if stream_id is not None:
            fields["stream_id"] = stream_id
        if session_id is not None:
            fields["session_id"] = session_id
        self.extra = fields

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra: Mapping[str, object] = self.extra or {}
        kwargs["extra"] = {**extra, **kwargs.get("extra", {})}
        return msg, kwargs
