"""Secrets and tokens."""

from __future__ import annotations

import base64

from control_api.credentials import (
    hash_secret,
    mint_token,
    new_api_key,
    new_id,
    new_stream_key,
    same_hash,
    verify_token,
)


def test_secrets_have_at_least_128_random_bits_and_are_unique() -> None:
    keys = {new_api_key() for _ in range(1000)} | {new_stream_key() for _ in range(1000)}
    assert len(keys) == 2000
    for key in list(keys)[:10]:
        raw = base64.urlsafe_b64decode(key[3:] + "==")
        assert len(raw) * 8 >= 128


def test_ids_have_prefixes() -> None:
    assert new_id("ls").startswith("ls_") and new_id("ls") != new_id("ls")


def test_hash_is_sha256_hex_and_compare_is_exact() -> None:
    h = hash_secret("sk_abc")
    assert len(h) == 64 and h != "sk_abc"
    assert same_hash(h, hash_secret("sk_abc")) and not same_hash(h, hash_secret("sk_abd"))


def test_token_round_trip_expiry_and_tamper() -> None:
    key = b"k" * 32
    token = mint_token(key, "key_1", ttl=60, now=1000)
    claims = verify_token(key, token, now=1059)
    assert claims is not None and claims.key_id == "key_1" and claims.expires_at == 1060
    assert verify_token(key, token, now=1060) is None
    assert verify_token(b"x" * 32, token, now=1000) is None
    assert verify_token(key, token.replace("key_1", "key_2"), now=1000) is None
    for junk in ("", "rt_", "rt_a.b", "rt_a.b.c", "rk_x", "rt_a.99999999999.ü"):
        assert verify_token(key, junk, now=1000) is None
