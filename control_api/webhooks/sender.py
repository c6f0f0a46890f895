"""One delivery attempt over HTTP: POST the body, judge the answer, never raise."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from yarl import URL

from control_api.media_library.targets import TargetPolicy, TargetRefused, refusal_in

ERROR_LIMIT = 300


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the receiver did: an HTTP status, or why there was none.

    ``final`` marks failures that retrying cannot fix (a refused target address).
    """

    status: int | None
    error: str | None
    final: bool = False

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
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:ERROR_LIMIT])
