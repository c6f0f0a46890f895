"""Request pipeline: CORS outermost, then authentication and rate limiting, then errors.

Errors are rendered innermost so that the outer layers can still stamp rate-limit
and CORS headers on a problem response.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web

from control_api import cors
from control_api.appkeys import LAST_USED, LIMITER, ORIGINS, SETTINGS, SIGNING_KEY, STORE
from control_api.credentials import TOKEN_PREFIX, verify_token
from control_api.principal import PRINCIPAL, Principal
from control_api.problems import Problem
from control_api.router import Operation
from control_api.store.models import ApiKey

log = logging.getLogger("relaycast.api")
HandlerT = Callable[[web.Request], Awaitable[web.StreamResponse]]
PUBLIC_V1 = frozenset({"/v1/openapi.json"})
KEPT_HEADERS = ("Allow", "Retry-After")
"""Headers of a handler's HTTP error that still mean something on the problem response
(a 405's methods; when to retry a 503, such as a blocking playlist reload held in vain)."""


def _operation(request: web.Request) -> Operation | None:
    return getattr(request.match_info.route.handler, "operation", None)


def _detail(exc: web.HTTPException) -> str:
    """The handler's own explanation when it gave one (why a blocking playlist reload
    was refused, say), else the status phrase; aiohttp's default text is just both."""
    text = (exc.text or "").strip()
    if text and text != f"{exc.status}: {exc.reason}":
        return text
    return exc.reason or "error"


@web.middleware
async def error_middleware(request: web.Request, handler: HandlerT) -> web.StreamResponse:
    try:
        return await handler(request)
    except Problem as problem:
        return problem.response()
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SETTINGS].api.max_body_bytes
        return Problem(413, f"body larger than the limit of {limit} bytes").response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kept = {name: exc.headers[name] for name in KEPT_HEADERS if name in exc.headers}
        close = exc.headers.get("Connection", "").lower() == "close"  # e.g. a body cut off
        refusal = Problem(exc.status, _detail(exc), headers=kept or None, close_connection=close)
        return refusal.response()
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return Problem(500, "internal error; the server log has the details").response()


async def _authenticate(request: web.Request) -> ApiKey:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Problem(401, "send Authorization: Bearer <API key or token>", slug="unauthorized")
    secret = secret.strip()
    store = request.app[STORE]
    key: ApiKey | None
    if secret.startswith(TOKEN_PREFIX):
        claims = verify_token(request.app[SIGNING_KEY], secret)
        key = await store.api_keys.by_id(claims.key_id) if claims else None
    else:
        key = await store.api_keys.by_secret(secret)
    if key is None:
        raise Problem(
            401, "the API key or token is invalid, revoked or expired", slug="unauthorized"
        )
    return key


async def _touch(request: web.Request, key: ApiKey) -> None:
    """Record lastUsedAt, at most once a minute per key: it is not worth a write per call."""
    if request.app[LAST_USED].due(key.id, time.monotonic()):
        await request.app[STORE].api_keys.touch(key.id, datetime.now(UTC))


def _free(request: web.Request) -> bool:
    """tus data transfer (PATCH) and offset checks (HEAD) of an upload the key created.

    A large file is thousands of PATCHes; counting them against the per-minute budget
    would stall uploads, and creating the upload was already counted.
    """
    return request.method in ("PATCH", "HEAD") and request.path.startswith("/v1/uploads/")


def _needs_key(request: web.Request) -> bool:
    if not request.path.startswith("/v1/") or request.path in PUBLIC_V1:
        return False
    op = _operation(request)
    return op is None or op.auth


@web.middleware
async def access_middleware(request: web.Request, handler: HandlerT) -> web.StreamResponse:
    """Authenticate, then spend one unit of the caller's budget.

    Failed authentications spend the budget of the remote address (and turn into 429
    once it is spent), so a flood of guesses is throttled; a valid key is never
    locked out by someone else's failures from the same address.
    """
    if not request.path.startswith("/v1/"):
        return await handler(request)
    limiter, now = request.app[LIMITER], time.monotonic()
    caller = f"addr:{request.remote}"
    verdict = None
    try:
        if _needs_key(request):
            key = await _authenticate(request)
            request[PRINCIPAL] = Principal(
                key.id, key.environment_id, key.access, tuple(key.cors_origins)
            )
            caller = f"key:{key.id}"
        verdict = limiter.peek(caller, now) if _free(request) else limiter.hit(caller, now)
        if not verdict.allowed:
            raise Problem(429, "rate limit exceeded; retry later")
        if PRINCIPAL in request:
            _check_access(request, request[PRINCIPAL])
            await _touch(request, key)
        response = await handler(request)
    except Problem as raised:
        problem = raised
        if verdict is None:
            verdict = limiter.hit(caller, now)
            if not verdict.allowed:
                problem = Problem(429, "too many failed attempts from this address; retry later")
        if problem.status == 401:
            problem.headers.setdefault("WWW-Authenticate", 'Bearer realm="relaycast"')
        response = problem.response()
    response.headers.update(verdict.headers())
    return response


def _check_access(request: web.Request, principal: Principal) -> None:
    op = _operation(request)
    if principal.restricted and op is not None and not op.allows_restricted_keys:
        raise Problem(403, "a restricted API key may not call this endpoint", slug="forbidden")


@web.middleware
async def cors_middleware(request: web.Request, handler: HandlerT) -> web.StreamResponse:
    origin = request.headers.get("Origin")
    if not origin or not request.path.startswith("/v1/"):
        return await handler(request)
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        if await request.app[ORIGINS].allows(origin):
            return web.Response(status=204, headers=cors.preflight_headers(origin))
        return web.Response(status=204)
    response = await handler(request)
    principal = request.get(PRINCIPAL)
    if (
        principal is not None
        and principal.restricted
        and cors.origin_allowed(principal.cors_origins, origin)
    ):
        response.headers.update(cors.response_headers(origin))
    return response
