"""Stream ID parsing for an ingest port (brief 4.3).

Accepted forms (the stream key is the last path segment of the resource):

* ``#!::r=live/KEY,m=publish`` -- the access-control syntax; keys in any order,
  ``?`` and ``&`` accepted as separators too (SRS), ``h=app/KEY`` without ``r``
  taken as the resource (SRS legacy), ``u``/``s`` kept as user / session (token or
  password), ``t`` must be ``stream``; unknown keys land in ``params``.
* ``publish:live/KEY`` and MediaMTX's ``publish:PATH[:USER:PASS][:QUERY]``;
  ``read:PATH`` is a request for playback.
* ``live/KEY`` or plain ``KEY`` (OBS users who paste the stream key), with an
  optional ``?query``.

A missing mode means *publish* on this ingest-only port (libsrt, SRS and MediaMTX
default to request/read; callers that only ever send expect this, see 4.3 step 5).
``m=request`` / ``read:`` ask for playback (the key is then the edge id, ``s`` the
playback token); ``bidirectional`` and unknown modes are refused with 2405. A
stream ID starting with ``%23`` arrived percent-encoded (ffmpeg and OBS do not
decode URL values, brief 9) and is decoded first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote

from .errors import ProtocolError
from .handshake import RejectCode

ACCESS_PREFIX = "#!::"
MAX_STREAMID = 512


class StreamIdError(ProtocolError):
    """The stream ID cannot be used; ``code`` is the rejection code to answer with."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class StreamIdInfo:
    """What a stream ID asked for. ``resource`` is the whole path, ``key`` its last
    segment, ``app`` the part before it (may be empty)."""

    raw: str
    resource: str
    key: str
    app: str
    mode: str = "publish"
    user: str | None = None
    session: str | None = None
    host: str | None = None
    params: dict[str, str] = field(default_factory=dict, hash=False)


def parse_streamid(streamid: str) -> StreamIdInfo:
    """Parse a stream ID (already word-swapped back into text); raises
    :class:`StreamIdError` with the rejection code for unusable ones."""
    text = streamid.strip()
    if text[:3].lower() == "%23":
        text = unquote(text)
    if len(text.encode("utf-8")) > MAX_STREAMID:
        raise StreamIdError(RejectCode.BAD_REQUEST, "stream ID longer than 512 bytes")
    if not text:
        raise StreamIdError(RejectCode.UNAUTHORIZED, "empty stream ID (no stream key)")
    if text.startswith("#!:"):
        if not text.startswith(ACCESS_PREFIX):
            raise StreamIdError(RejectCode.BAD_REQUEST, "nested #!: stream ID syntax")
        return _access_control(text)
    head, sep, _rest = text.partition(":")
    if sep and head in ("publish", "read"):
        return _mediamtx(text)
    resource, _, query = text.partition("?")
    return _finish(text, resource, "publish", params=_query(query))


def _access_control(text: str) -> StreamIdInfo:
    body = text[len(ACCESS_PREFIX) :].replace("?", ",").replace("&", ",")
    values: dict[str, str] = {}
    params: dict[str, str] = {}
    for item in body.split(","):
        if not item:
            continue
        name, sep, value = item.partition("=")
        if not sep:
            raise StreamIdError(RejectCode.BAD_REQUEST, f"stream ID item {item!r} has no '='")
        if len(name) == 1:
            values.setdefault(name, value)
        else:
            params.setdefault(name, value)
    if values.get("t", "stream") != "stream":
        raise StreamIdError(RejectCode.NOTSUP_MEDIA, f"stream ID type {values['t']!r}")
    host = values.get("h")
    resource = values.get("r")
    if resource is None and host is not None and "/" in host:
        resource, host = host, None
    return _finish(
        text,
        resource or "",
        values.get("m", "publish"),
        user=values.get("u"),
        session=values.get("s"),
        host=host,
        params=params,
    )


def _mediamtx(text: str) -> StreamIdInfo:
    parts = text.split(":")
    action, path = parts[0], parts[1]
    user = password = None
    query = ""
    if len(parts) == 3:
        query = parts[2]
    elif len(parts) in (4, 5):
        user, password = parts[2], parts[3]
        query = parts[4] if len(parts) == 5 else ""
    elif len(parts) > 5:
        raise StreamIdError(RejectCode.BAD_REQUEST, "too many ':' fields in stream ID")
    mode = "publish" if action == "publish" else "request"
    return _finish(text, path, mode, user=user, session=password, params=_query(query))


def _query(query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in query.replace("&", ",").split(","):
        if item:
            name, _, value = item.partition("=")
            params.setdefault(name, value)
    return params


def _finish(
    raw: str,
    resource: str,
    mode: str,
    *,
    user: str | None = None,
    session: str | None = None,
    host: str | None = None,
    params: dict[str, str],
) -> StreamIdInfo:
    if mode not in ("publish", "request"):
        if mode == "bidirectional":
            raise StreamIdError(RejectCode.BAD_MODE, f"mode {mode!r} is not served")
        raise StreamIdError(RejectCode.BAD_MODE, f"unknown mode {mode!r}")
    resource = resource.lstrip("/")
    app, _, key = resource.rpartition("/")
    if not key:
        raise StreamIdError(RejectCode.BAD_REQUEST, "stream ID names no stream key")
    return StreamIdInfo(
        raw=raw,
        resource=resource,
        key=key,
        app=app,
        mode=mode,
        user=user,
        session=session,
        host=host,
        params=params,
    )
