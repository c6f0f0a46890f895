"""RFC 9457 problem details: the one shape every API error takes."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aiohttp import web

PROBLEM_TYPE_BASE = "https://relaycast.dev/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


class Problem(Exception):
    """Raise anywhere in a handler; the error middleware renders it."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        headers: dict[str, str] | None = None,
        close_connection: bool = False,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = HTTPStatus(status).phrase
        self.slug = slug or self.title.lower().replace(" ", "-").replace("'", "")
        self.headers = headers or {}
        # After a request whose body was not read to its end: the rest of it would
        # otherwise be parsed as the next request on the connection.
        self.close_connection = close_connection
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {
            "type": PROBLEM_TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.extra,
        }

    def response(self) -> web.Response:
        response = web.Response(
            status=self.status,
            text=json.dumps(self.body()),
            content_type=PROBLEM_CONTENT_TYPE,
            headers=self.headers,
        )
        if self.close_connection:
            response.force_close()
        return response


def problem_body(status: int, detail: str) -> tuple[str, bytes]:
    """(content type, body) of a problem, for responses written below aiohttp (the
    LL-HLS fast path's 503 after a vain blocking reload)."""
    return PROBLEM_CONTENT_TYPE, json.dumps(Problem(status, detail).body()).encode()


def not_found(what: str, ident: str) -> Problem:
    return Problem(404, f"{what} {ident!r} does not exist in this environment")


def conflict(detail: str) -> Problem:
    return Problem(409, detail)


def validation(field: str, message: str) -> Problem:
    return Problem(
        422,
        f"{field}: {message}",
        slug="validation-error",
        errors=[{"field": field, "message": message}],
    )
