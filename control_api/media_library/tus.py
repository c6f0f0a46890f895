"""tus 1.0 at the header level: what the server advertises and how it reads a request.

Pure functions over header mappings. They raise :class:`TusProblem`, a problem+json
error that also carries ``Tus-Resumable`` (tus clients look for it on every answer)
and can use tus's own status codes, such as 460 Checksum Mismatch.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from http import HTTPStatus
from typing import Any

from aiohttp import web

from control_api.problems import Problem

TUS_VERSION = "1.0.0"
EXTENSIONS = ("creation", "creation-with-upload", "termination", "checksum", "expiration")
OFFSET_STREAM = "application/offset+octet-stream"
MEDIA_ID_HEADER = "Relaycast-Media-Id"
RESUMABLE = {"Tus-Resumable": TUS_VERSION}
MAX_METADATA_CHARS = 8192
MAX_FILENAME_CHARS = 255

Hasher = Callable[[], Any]
CHECKSUMS: dict[str, Hasher] = {
    "sha1": lambda: hashlib.sha1(usedforsecurity=False),
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
    "md5": lambda: hashlib.md5(usedforsecurity=False),
}


class TusProblem(Problem):
    """A problem answer for the tus endpoints: Tus-Resumable always, tus status codes too."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        slug: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        known = status in HTTPStatus._value2member_map_
        merged = {**RESUMABLE, **(headers or {})}
        super().__init__(status if known else 400, detail, slug=slug, headers=merged, **extra)
        self.status = status
        if title is not None:
            self.title = title
        self.close = False

    def response(self) -> web.Response:
        response = super().response()
        response.set_status(self.status, self.title)
        if self.close:
            response.force_close()
        return response


def checksum_mismatch(algorithm: str) -> TusProblem:
    return TusProblem(
        460,
        f"the {algorithm} checksum of the body does not match Upload-Checksum; "
        "the chunk was discarded, resend it",
        title="Checksum Mismatch",
        slug="checksum-mismatch",
    )


def require_version(headers: Mapping[str, str]) -> None:
    """Every tus request but OPTIONS names the protocol version; we speak 1.0.0 only."""
    if headers.get("Tus-Resumable") != TUS_VERSION:
        raise TusProblem(
            412,
            f"send Tus-Resumable: {TUS_VERSION} (the only tus version this server speaks)",
            headers={"Tus-Version": TUS_VERSION},
        )


def discovery_headers(max_size: int) -> dict[str, str]:
    return {
        **RESUMABLE,
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": ",".join(EXTENSIONS),
        "Tus-Max-Size": str(max_size),
        "Tus-Checksum-Algorithm": ",".join(CHECKSUMS),
    }


def _non_negative(headers: Mapping[str, str], name: str) -> int:
    raw = headers.get(name)
    if raw is None:
        raise TusProblem(400, f"{name} header is required")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        raise TusProblem(400, f"{name} must be a non-negative integer, not {raw[:40]!r}")
    return int(raw)


def upload_length(headers: Mapping[str, str], max_size: int) -> int:
    if "Upload-Defer-Length" in headers:
        raise TusProblem(400, "Upload-Defer-Length is not supported; send Upload-Length")
    if "Upload-Concat" in headers:
        raise TusProblem(400, "the concatenation extension is not supported")
    length = _non_negative(headers, "Upload-Length")
    if length > max_size:
        raise TusProblem(
            413,
            f"Upload-Length {length} is over this server's maximum of {max_size} bytes",
            headers={"Tus-Max-Size": str(max_size)},
        )
    return length


def upload_offset(headers: Mapping[str, str]) -> int:
    return _non_negative(headers, "Upload-Offset")


def _metadata_error(detail: str) -> TusProblem:
    return TusProblem(400, f"Upload-Metadata: {detail}", slug="malformed-metadata")


def parse_metadata(raw: str | None) -> dict[str, str]:
    """``key base64value, key2 base64value2``; values must be UTF-8 text."""
    if raw is None or not raw.strip():
        return {}
    if len(raw) > MAX_METADATA_CHARS:
        raise _metadata_error(f"longer than {MAX_METADATA_CHARS} characters")
    out: dict[str, str] = {}
    for pair in raw.split(","):
        key, _, value = pair.strip().partition(" ")
        if not key or not key.isascii() or not key.isprintable():
            raise _metadata_error(f"bad key {key[:40]!r}")
        if key in out:
            raise _metadata_error(f"key {key!r} appears twice")
        try:
            out[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise _metadata_error(f"the value of {key!r} is not base64-encoded UTF-8") from None
    return out


def filename(metadata: Mapping[str, str]) -> str:
    """The file's name: required, one line, at most 255 characters. Never used as a path."""
    name = metadata.get("filename", "").strip()
    if not name:
        raise TusProblem(
            422,
            "Upload-Metadata must carry filename (base64 of the file's name)",
            slug="validation-error",
            errors=[{"field": "Upload-Metadata.filename", "message": "required"}],
        )
    if len(name) > MAX_FILENAME_CHARS or not name.isprintable():
        raise TusProblem(
            422,
            f"Upload-Metadata filename must be printable and at most {MAX_FILENAME_CHARS} "
            "characters",
            slug="validation-error",
            errors=[{"field": "Upload-Metadata.filename", "message": "invalid"}],
        )
    return name


@dataclass(frozen=True, slots=True)
class Checksum:
    algorithm: str
    digest: bytes

    def hasher(self) -> Any:
        return CHECKSUMS[self.algorithm]()


def upload_checksum(headers: Mapping[str, str]) -> Checksum | None:
    """``Upload-Checksum: sha1 <base64 digest>``; an algorithm we lack is a 400 (tus says so)."""
    raw = headers.get("Upload-Checksum")
    if raw is None:
        return None
    algorithm, _, value = raw.strip().partition(" ")
    if algorithm not in CHECKSUMS:
        raise TusProblem(
            400,
            f"checksum algorithm {algorithm[:20]!r} is not supported; use one of "
            + ", ".join(CHECKSUMS),
            headers={"Tus-Checksum-Algorithm": ",".join(CHECKSUMS)},
        )
    try:
        digest = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise TusProblem(400, "Upload-Checksum: the digest is not base64") from None
    if len(digest) != CHECKSUMS[algorithm]().digest_size:
        raise TusProblem(400, f"Upload-Checksum: not a {algorithm} digest (wrong length)")
    return Checksum(algorithm, digest)


def http_date(when: datetime) -> str:
    """RFC 9110 date, as Upload-Expires wants it."""
    return format_datetime(when, usegmt=True)
