"""The signature header against an independently computed vector, and the verify recipe."""

from __future__ import annotations

import re

from control_api.webhooks import signing

SECRET = "whsec_test_secret_0123456789"
BODY = b'{"id":"evt_1","type":"stream.live"}'
T = 1_700_000_000
# computed outside Python:
# printf '%s' '1700000000.{"id":"evt_1","type":"stream.live"}' \
#   | openssl dgst -sha256 -hmac whsec_test_secret_0123456789
VECTOR = "36458006cff6df8692a6db0e79dc865727dbeaa9d672e720432e3f136b8a7ada"


def test_header_is_timestamp_and_hex_hmac_of_timestamp_dot_body() -> None:
    assert signing.signature(SECRET, T, BODY) == f"t={T},v1={VECTOR}"


def test_verify_accepts_own_signature_and_rejects_tampering() -> None:
    header = signing.signature(SECRET, T, BODY)
    assert signing.verify(SECRET, header, BODY, now=T + 10)
    assert not signing.verify(SECRET, header, BODY + b" ", now=T)
    assert not signing.verify("whsec_other_secret_00000000", header, BODY, now=T)
    assert not signing.verify(SECRET, header, BODY, now=T + 301)
    assert not signing.verify(SECRET, f"t={T + 1},v1={VECTOR}", BODY, now=T)
    assert not signing.verify(SECRET, "garbage", BODY, now=T)
    assert not signing.verify(SECRET, f"t=x,v1={VECTOR}", BODY, now=T)


def test_new_secret_has_192_random_bits() -> None:
    secrets = {signing.new_secret() for _ in range(100)}
    assert len(secrets) == 100
    for secret in secrets:
        assert re.fullmatch(r"whsec_[A-Za-z0-9_-]{32}", secret)
