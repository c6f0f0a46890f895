"""Stateless SYN cookies for the induction phase (brief 1.2).

An induction request allocates nothing: the answer carries a cookie computed from
the peer's address and port, a coarse clock (the minute) and a per-listener secret.
A conclusion is only considered when it echoes a cookie valid for the current or
the previous minute (libsrt does the same), so a spoofed source address never gets
the listener to hold state.
"""

from __future__ import annotations

import hashlib
from typing import Any

COOKIE_PERIOD = 60.0


class CookieJar:
    """Makes and checks cookies; the only state is the secret."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("cookie secret must be at least 16 bytes")
        self._secret = secret[:32]

    def _cookie(self, addr: tuple[Any, ...], period: int) -> int:
        message = f"{addr[0]}|{addr[1]}|{period}".encode()
        digest = hashlib.blake2s(message, key=self._secret, digest_size=4).digest()
        return int.from_bytes(digest, "big")

    def make(self, addr: tuple[Any, ...], now: float) -> int:
        return self._cookie(addr, int(now // COOKIE_PERIOD))

    def check(self, cookie: int, addr: tuple[Any, ...], now: float) -> bool:
        period = int(now // COOKIE_PERIOD)
        return cookie in (self._cookie(addr, period), self._cookie(addr, period - 1))
