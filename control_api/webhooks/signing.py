"""The ``Relaycast-Signature`` header: ``t=<unix seconds>,v1=<hex HMAC-SHA256>``.

The MAC covers ``"<t>.<body>"``, so a captured request cannot be replayed later with
a fresh timestamp, and the body cannot be changed. Receivers check it in constant
time and refuse timestamps far from their clock (see README, "Webhooks").
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

HEADER = "Relaycast-Signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


def new_secret() -> str:
    """192 random bits, URL-safe: 32 characters after the prefix."""
    return SECRET_PREFIX + secrets.token_urlsafe(24)


def mac(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={mac(secret, timestamp, body)}"


def verify(secret: str, header: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    """What a receiver does; kept here so the tests check the documented recipe's logic."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(mac(secret, timestamp, body), fields.get("v1", ""))
