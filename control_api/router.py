"""Declared operations: one table drives routing, validation, access and OpenAPI.

Each handler is registered with the models it takes and returns, so the document
served at ``/v1/openapi.json`` cannot drift from what the server actually checks.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from control_api.appkeys import SETTINGS
from control_api.principal import PRINCIPAL, Principal
from control_api.problems import Problem
from control_api.schemas.common import ApiModel, QueryModel, RequestModel

B = TypeVar("B", bound=RequestModel | None)
Q = TypeVar("Q", bound=QueryModel | None)


@dataclass(slots=True)
class Call(Generic[B, Q]):
    """What a handler gets: the request, who is calling, and the validated inputs."""

    request: web.Request
    body: B
    query: Q

    @property
    def principal(self) -> Principal:
        return self.request[PRINCIPAL]

    @property
    def env(self) -> str:
        return self.principal.environment_id

    def path(self, name: str) -> str:
        return self.request.match_info[name]


Handler = Callable[[Call[Any, Any]], Awaitable[ApiModel | None]]


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: type[RequestModel] | None = None
    query: type[QueryModel] | None = None
    response: type[ApiModel] | None = None
    status: int = 200
    allows_restricted_keys: bool = False
    auth: bool = True
    errors: tuple[int, ...] = ()
    description: str = ""

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


def _loc(err: Any) -> str:
    """The field path as a client wrote it: pydantic adds union-member tags such as
    ``constrained-str`` for optional constrained fields, which no field name looks like."""
    parts = [p for p in err["loc"] if isinstance(p, int) or (p != "__root__" and p.isidentifier())]
    return ".".join(str(p) for p in parts) or "body"


def _relevant(errors: list[Any]) -> list[Any]:
    """An optional field that failed its constraint also "failed" to be None; that
    second error only confuses, so it is dropped when a real one exists."""
    real = [e for e in errors if e.get("type") != "none_required"]
    return real or errors


def validation_problem(exc: ValidationError, where: str) -> Problem:
    errors = [{"field": _loc(e) or where, "message": e["msg"]} for e in _relevant(exc.errors())]
    first = errors[0]
    return Problem(
        422,
        f"{where} field {first['field']!r}: {first['message']}",
        slug="validation-error",
        errors=errors,
    )


def _nested_deeper(data: dict[str, Any] | list[Any], limit: int) -> bool:
    """Whether an array or object in ``data`` sits more than ``limit`` levels deep.

    Walked with a stack, not recursion: the point is to refuse, before anything
    recursive (validation, storage, rendering) sees it, a body that would exhaust
    the interpreter's recursion limit.
    """
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def _too_deep(limit: int) -> Problem:
    return Problem(
        400, f"body nests arrays or objects more than {limit} levels deep", slug="json-too-deep"
    )


def parse_json(raw: bytes, max_depth: int) -> Any:
    """A request body as JSON; 400 problems for malformed or too deeply nested input."""
    try:
        data = json.loads(raw) if raw else None
    except RecursionError:  # deeper than the C parser goes: far past any limit
        raise _too_deep(max_depth) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, f"body is not valid JSON: {exc}", slug="malformed-json") from None
    if isinstance(data, dict | list) and _nested_deeper(data, max_depth):
        raise _too_deep(max_depth)
    return data


async def _read_body(request: web.Request, limit: float) -> bytes:
    """The whole body, or 408: aiohttp waits for a trickled body as long as it takes,
    holding the handler (and a database-less but real slot) for every slow client."""
    try:
        async with asyncio.timeout(limit):
            return await request.read()
    except TimeoutError:
        raise Problem(
            408,
            f"the request body did not arrive within {limit:g} s (http.body_timeout)",
            slug="body-timeout",
            close_connection=True,
        ) from None


async def _parse_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    if request.content_type != "application/json":
        raise Problem(415, "send the body as application/json")
    settings = request.app[SETTINGS]
    raw = await _read_body(request, settings.http.body_timeout)
    data = parse_json(raw, settings.api.max_json_depth)
    if not isinstance(data, dict):
        raise Problem(422, "body must be a JSON object", slug="validation-error")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc, "body") from None


def _parse_query(request: web.Request, model: type[BaseModel]) -> BaseModel:
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        raise validation_problem(exc, "query") from None


def _render(op: Operation, result: ApiModel | None) -> web.Response:
    if result is None:
        return web.Response(status=204)
    text = result.model_dump_json(by_alias=True, exclude_none=True)
    return web.Response(status=op.status, text=text, content_type="application/json")


@dataclass
class Api:
    operations: list[Operation] = field(default_factory=list)

    def route(self, method: str, path: str, **spec: Any) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self.operations.append(Operation(method=method, path=path, handler=fn, **spec))
            return fn

        return register

    def find(self, request: web.Request) -> Operation | None:
        route = request.match_info.route
        return getattr(route.handler, "operation", None)

    def mount(self, app: web.Application) -> None:
        for op in self.operations:
            app.router.add_route(op.method, op.path, _endpoint(op))


def _endpoint(op: Operation) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def endpoint(request: web.Request) -> web.StreamResponse:
        query = _parse_query(request, op.query) if op.query else None
        body = await _parse_body(request, op.body) if op.body else None
        return _render(op, await op.handler(Call(request, body, query)))

    endpoint.operation = op  # type: ignore[attr-defined]
    endpoint.__name__ = op.operation_id
    return endpoint
