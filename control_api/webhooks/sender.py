"""One delivery attempt over HTTP: POST the body, judge the answer, never raise."""

from __future__ import annotations

import errno
from dataclasses import dataclass

import aiohttp
from yarl import URL

from control_api.media_library.targets import TargetPolicy, TargetRefused, refusal_in

ERROR_LIMIT = 300
EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
"""This process or host is out of descriptors or buffers: nothing the receiver did."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the receiver did: an HTTP status, or why there was none.

    ``final`` marks failures that retrying cannot fix (a refused target address);
    ``exhausted`` those where this server ran out of file descriptors (or buffers)
    before anything reached the receiver.
    """

    status: int | None
    error: str | None
    final: bool = False
    exhausted: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


async def post(
    http: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    targets: TargetPolicy,
) -> Outcome:
    """Redirects are not followed (a 3xx is a failure): the webhook names the URL that
    gets the signed body, and following would hand it to wherever the receiver points.

    ``http`` must resolve names through a ``GuardedResolver`` on ``targets``; literal
    IP hosts never reach a resolver, so they are checked here.
    """
    try:
        parsed = URL(url)
        targets.check_host(parsed.host or "", parsed.port or 0)
        async with http.post(parsed, data=body, headers=headers, allow_redirects=False) as resp:
            if 200 <= resp.status < 300:
                return Outcome(resp.status, None)
            return Outcome(resp.status, f"the receiver answered HTTP {resp.status}")
    except TargetRefused as exc:
        return Outcome(None, f"refused: {exc}", final=True)
    except TimeoutError:
        return Outcome(None, "timed out")
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        refused = refusal_in(exc)
        if refused is not None:
            return Outcome(None, f"refused: {refused}", final=True)
        return failed(exc)


def failed(exc: BaseException) -> Outcome:
    """The outcome of an attempt that raised ``exc`` before any answer."""
    error = f"{type(exc).__name__}: {exc}"[:ERROR_LIMIT]
    return Outcome(None, error, exhausted=exhausted(exc))


def exhausted(exc: BaseException) -> bool:
    """Whether an out-of-descriptors error is anywhere in the chain (aiohttp wraps the
    OSError of ``socket()`` or ``getaddrinfo`` in its own connection errors)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in EXHAUSTED:
            return True
        inner = getattr(current, "os_error", None)
        current = (
            inner if isinstance(inner, BaseException) else current.__cause__ or current.__context__
        )
    return False
