"""Signed playback tokens for private streams: ``{expires}.{hmac}`` bound to one edge id.

Stateless, so any node sharing the signing secret can check them, and a token for one
stream never opens another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def _sign(key: bytes, edge_id: str, expires: int) -> str:
    digest = hmac.new(key, f"play:{edge_id}:{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def mint(key: bytes, edge_id: str, expires: int) -> str:
    """A token valid for ``edge_id`` until ``expires`` (Unix seconds)."""
    return f"{expires}.{_sign(key, edge_id, expires)}"


def verify(key: bytes, edge_id: str, token: str, now: float) -> bool:
    expires, _, signature = token.partition(".")
    if not (expires.isascii() and expires.isdigit()) or len(expires) > 12 or int(expires) <= now:
        return False
    expected = _sign(key, edge_id, int(expires))
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))
