"""Destination URLs: split what a user typed into a shareable URL and its secrets.

A destination is stored as a URL that may be shown (``rtmp://host/app``,
``srt://host:port?latency=200``) plus the secrets that are never shown: the stream
key (appended as the RTMP stream name, or sent as the SRT ``streamid``) and the SRT
``passphrase``. The pusher needs the secrets back to talk to the platform, so they
are kept retrievably, and put together again only by :func:`publish_url`, right
before connecting. Validation goes through the same parsers the clients use, so a
URL the API accepts is a URL the pusher can open.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

from .rtmp_client import parse_rtmp_url
from .srt_client import parse_srt_url

SCHEMES = ("rtmp", "rtmps", "srt")
_SRT_SECRETS = frozenset({"passphrase", "streamid"})


@dataclass(frozen=True, slots=True)
class SplitUrl:
    """A destination URL without secrets, and the secrets it carried."""

    url: str
    stream_key: str | None = field(default=None, repr=False)
    passphrase: str | None = field(default=None, repr=False)


def scheme_of(url: str) -> str:
    return url.partition("://")[0].lower()


def split_destination_url(url: str) -> SplitUrl:
    """Validate a user's URL and move SRT secrets out of it; raises ``ValueError``.

    ``rtmp://`` and ``rtmps://`` need a host and an application path; ``srt://`` a
    host and port. For SRT, ``streamid`` and ``passphrase`` query options are taken
    out (they become the stream key and passphrase); other options stay.
    """
    scheme = scheme_of(url)
    if scheme not in SCHEMES:
        raise ValueError("must start with rtmp://, rtmps:// or srt://")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise ValueError("must not contain spaces or control characters")
    if scheme == "srt":
        return _split_srt(url)
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError("has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry user:password; use streamKey")
    try:
        _ = parts.port
    except ValueError:
        raise ValueError("has an invalid port") from None
    if not [s for s in parts.path.split("/") if s]:
        raise ValueError("needs an application path, e.g. rtmp://host/live")
    return SplitUrl(url.rstrip("/"))


def _split_srt(url: str) -> SplitUrl:
    base, _, query = url.partition("?")
    kept: list[str] = []
    secrets: dict[str, str] = {}
    for item in query.split("&") if query else ():
        name, _, value = item.partition("=")
        if unquote(name).lower() in _SRT_SECRETS:
            secrets[unquote(name).lower()] = unquote(value)
        elif item:
            kept.append(item)
    public = base.rstrip("/") + ("?" + "&".join(kept) if kept else "")
    parse_srt_url(public)  # host, port and the remaining options
    split = SplitUrl(public, secrets.get("streamid") or None, secrets.get("passphrase") or None)
    parse_srt_url(publish_url(split.url, split.stream_key, split.passphrase))
    return split


def publish_url(url: str, stream_key: str | None, passphrase: str | None = None) -> str:
    """The URL the pusher connects to: ``url`` with its secrets put back.

    RTMP: the key becomes the last path segment (the publish name). SRT: the key is
    the ``streamid`` and the passphrase an option, both percent-encoded so that any
    character survives the client's query parsing.
    """
    if scheme_of(url) == "srt":
        options = []
        if stream_key:
            options.append("streamid=" + quote(stream_key, safe=""))
        if passphrase:
            options.append("passphrase=" + quote(passphrase, safe=""))
        if not options:
            return url
        return url + ("&" if "?" in url else "?") + "&".join(options)
    return f"{url}/{stream_key}" if stream_key else url


def check_publish_url(url: str) -> None:
    """Raise ``ValueError`` when the client would refuse the assembled URL."""
    if scheme_of(url) == "srt":
        parse_srt_url(url)
    else:
        parse_rtmp_url(url)


def redacted(url: str) -> str:
    """A loggable form of a publish URL (secrets replaced by ``***``)."""
    try:
        if scheme_of(url) == "srt":
            return parse_srt_url(url).redacted
        return parse_rtmp_url(url).redacted
    except ValueError:
        return f"{scheme_of(url)}://(invalid URL)"
