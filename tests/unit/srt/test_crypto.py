"""Encryption: the captured test vector (brief 2.4), key wrap for every key
length, both-key KM messages, the refresh schedule, and decrypting the captured
data packet through a listener-side connection."""

from __future__ import annotations

import pytest

from server.protocols.srt import DataReceived, SrtConnection, SrtLimits
from server.protocols.srt.crypto import (
    KM_STATE_BADSECRET,
    KeyMaterialError,
    PayloadCipher,
    ReceiveKeys,
    SendKeys,
    build_key_material,
    ctr_iv,
    derive_kek,
    parse_key_material,
    unwrap_keys,
)

from .helpers import seeded

# Against the compiled modules and their pure-Python twins (tests/accel_twins.py).
pytestmark = pytest.mark.usefixtures("implementation")

PASS = b"supersecret123"
KMREQ = bytes.fromhex(
    "12202901000000000200020000000404f110c4e090b5349ed686c3c68434117f"
    "d8433ad365106b36e8f61d01307dc5e4021b28b14bb9269f"
)
KEK = bytes.fromhex("8d7ceeeed9c6e9941490500f6c79041a")
SEK = bytes.fromhex("cdafc0292b01bc037fa06cd9fe99a50a")
HEADER = bytes.fromhex("7b86daf6e800000100003d5810b0e9b9")
SEQ = 2072435446
CTR = bytes.fromhex("f110c4e090b5349ed686b8405ec20000")
CIPHER = bytes.fromhex("5728368782247355cb4020698270dfa0ccf95bd5f0fb3dd111a006499e532124")
PLAIN = bytes.fromhex("474011100042f0250001c10000ff01ff0001fc80144812010646466d70656709")


def test_captured_vector() -> None:
    km = parse_key_material(KMREQ)
    assert km.kk == 1 and km.key_length == 16 and len(km.salt) == 16
    assert derive_kek(PASS, km.salt, 16) == KEK
    assert unwrap_keys(KEK, km) == (SEK, None)
    assert ctr_iv(km.salt, SEQ) == CTR
    cipher = PayloadCipher(SEK, km.salt)
    assert cipher.crypt(SEQ, CIPHER) == PLAIN
    assert cipher.crypt(SEQ, PLAIN) == CIPHER  # CTR: the same operation both ways
    assert cipher.crypt(SEQ + 1, CIPHER) != PLAIN  # the IV really depends on seq


def test_captured_packet_through_a_listener_connection() -> None:
    keys = ReceiveKeys(PASS)
    keys.install(parse_key_material(KMREQ))
    conn = SrtConnection.accepted(
        0.0,
        socket_id=0x10B0E9B9,
        peer_addr=("127.0.0.1", 1),
        peer_socket_id=0x0CF4B833,
        isn=SEQ,
        streamid="",
        latency_ms=120,
        peer_latency_ms=120,
        receive_keys=keys,
        limits=SrtLimits(tsbpd_delivery=False),
        handshake_response=b"",
    )
    conn.events()
    conn.receive(HEADER + CIPHER, 0.01)
    assert conn.events() == [DataReceived(PLAIN, 0x3D58, SEQ)]


def test_wrong_passphrase_fails_unwrap() -> None:
    keys = ReceiveKeys(b"not the passphrase")
    with pytest.raises(KeyMaterialError):
        keys.install(parse_key_material(KMREQ))
    answer = keys.on_kmreq(KMREQ)
    assert answer == KM_STATE_BADSECRET.to_bytes(4, "big")


@pytest.mark.parametrize("key_length", [16, 24, 32])
def test_key_wrap_roundtrip(key_length: int) -> None:
    rand = seeded(key_length)
    keys = SendKeys.create(PASS, key_length, rand)
    km = parse_key_material(keys.km)
    assert km.key_length == key_length and len(km.wrapped) == key_length + 8
    receive = ReceiveKeys(PASS)
    receive.install(km)
    assert receive.key_length == key_length
    payload = bytes(range(256)) * 5
    sent = keys.ciphers[1].crypt(77, payload)
    assert sent != payload and receive.ciphers[1].crypt(77, sent) == payload


def test_both_keys_even_first() -> None:
    kek = derive_kek(PASS, bytes(16), 24)
    even, odd = b"E" * 24, b"O" * 24
    km = build_key_material(kek, bytes(16), even, odd)
    assert km.kk == 3 and len(km.wrapped) == 56
    parsed = parse_key_material(km.encode())
    assert parsed.encode()[3] == 3
    assert unwrap_keys(kek, parsed) == (even, odd)
    only_odd = build_key_material(kek, bytes(16), None, odd)
    assert only_odd.kk == 2 and unwrap_keys(kek, only_odd) == (None, odd)


def test_refresh_schedule() -> None:
    keys = SendKeys.create(PASS, 16, seeded(3), refresh_rate=10, preannounce=2)
    receive = ReceiveKeys(PASS)
    receive.install(parse_key_material(keys.km))
    announced = []
    salts = {parse_key_material(keys.km).salt}
    kks = []
    for n in range(1, 31):
        kks.append(keys.kk)
        km = keys.on_packet()
        if km is not None:
            announced.append((n, parse_key_material(km).kk))
            salts.add(parse_key_material(km).salt)
            assert receive.on_kmreq(km) == km  # echo = accepted
    # odd key announced with the even one, used from packet 11, even retired at 12 ...
    assert announced == [(8, 3), (12, 2), (18, 3), (22, 1), (28, 3)]
    assert kks[:10] == [1] * 10 and kks[10:20] == [2] * 10 and kks[20:30] == [1] * 10
    assert keys.refreshes == 3
    # the salt never changes (libsrt keeps it; the KEK is reused)
    assert len(salts) == 1
    for kk in (1, 2):
        cipher = keys.ciphers[kk]
        if cipher is not None:
            assert receive.ciphers[kk].key == cipher.key


def test_malformed_key_material() -> None:
    from server.protocols.srt import ProtocolError

    for bad in (
        KMREQ[:20],
        b"\x13" + KMREQ[1:],
        KMREQ[:3] + b"\x00" + KMREQ[4:],
        KMREQ[:15] + b"\x05" + KMREQ[16:],
    ):
        with pytest.raises(ProtocolError):
            parse_key_material(bad)
