"""Identifiers, secrets and short-lived tokens.

Secrets carry at least 128 random bits, are stored only as SHA-256 hashes and are
looked up by that hash; where a value is compared, the comparison is constant-time
so response timing leaks nothing about how much of a guess was right.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

API_KEY_PREFIX = "rk_"
STREAM_KEY_PREFIX = "sk_"
TOKEN_PREFIX = "rt_"  # noqa: S105 - a prefix, not a secret
_SECRET_BYTES = 24  # 192 bits: comfortably over the 128-bit floor


def new_id(prefix: str) -> str:
    """Opaque id with a type prefix (``ls_…``); 96 random bits make collisions moot."""
    return f"{prefix}_{secrets.token_hex(12)}"


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)


def new_stream_key() -> str:
    return STREAM_KEY_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def display_prefix(secret: str) -> str:
    """Enough of a secret to recognise it in a list, far too little to use it."""
    return secret[:8]


@dataclass(frozen=True, slots=True)
class TokenClaims:
    key_id: str
    expires_at: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_token(signing_key: bytes, key_id: str, ttl: int, now: float | None = None) -> str:
    """A stateless token: the key id and expiry, HMAC-signed by the server.

    It needs no table, and it dies with its key because every use re-checks the key.
    """
    expires = int((time.time() if now is None else now) + ttl)
    body = f"{key_id}.{expires}"
    sig = hmac.new(signing_key, body.encode(), hashlib.sha256).digest()
    return f"{TOKEN_PREFIX}{body}.{_b64(sig)}"


def verify_token(signing_key: bytes, token: str, now: float | None = None) -> TokenClaims | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    parts = token[len(TOKEN_PREFIX) :].split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    key_id, expires, sig = parts
    expected = _b64(hmac.new(signing_key, f"{key_id}.{expires}".encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected.encode(), sig.encode("utf-8", "replace")):
        return None
    if int(expires) <= (time.time() if now is None else now):
        return None
    return TokenClaims(key_id=key_id, expires_at=int(expires))
