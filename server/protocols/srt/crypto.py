"""SRT encryption (brief section 2): the key-material (KM) message, PBKDF2 key
derivation, RFC 3394 key wrap, and AES-CTR payload encryption with the counter
block built as libsrt's ``hcrypt_SetCtrIV`` builds it (the draft's formula is wrong).

Per-packet cost matters: one long-lived CTR context per stream key is re-seeded
with ``reset_nonce`` for every packet instead of building a new cipher object.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap,
    aes_key_wrap,
)

from .errors import KeyMaterialError, ProtocolError

KM_HEADER = struct.Struct(">BHBIBBBBHBB")
KM_HEADER_SIZE = 16
KM_FIRST_BYTE = 0x12  # S=0, version 1, packet type 2 (KM)
KM_SIGNATURE = 0x2029  # "HAI" PnP ID
CIPHER_AES_CTR = 2
CIPHER_AES_GCM = 4
SE_SRT = 2
SALT_SIZE = 16
KEY_LENGTHS = (16, 24, 32)
PBKDF2_ITERATIONS = 2048
WRAP_OVERHEAD = 8

#: KM states in a one-word KMRSP (a failure answer instead of the echo).
KM_STATE_NOSECRET = 3
KM_STATE_BADSECRET = 4

RandomBytes = Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    """A KM message. ``kk`` says which keys ``wrapped`` holds: 1 even, 2 odd, 3 both
    (even first)."""

    kk: int
    salt: bytes
    key_length: int
    wrapped: bytes
    cipher: int = CIPHER_AES_CTR
    auth: int = 0
    se: int = SE_SRT
    keki: int = 0

    def encode(self) -> bytes:
        head = KM_HEADER.pack(
            KM_FIRST_BYTE,
            KM_SIGNATURE,
            self.kk & 3,
            self.keki,
            self.cipher,
            self.auth,
            self.se,
            0,
            0,
            len(self.salt) // 4,
            self.key_length // 4,
        )
        return head + self.salt + self.wrapped


def parse_key_material(data: bytes) -> KeyMaterial:
    """Parse and sanity-check a KM message (KMREQ extension or 0x7FFF/3 body)."""
    if len(data) < KM_HEADER_SIZE:
        raise ProtocolError(f"key material of {len(data)} bytes")
    first, sig, kk, keki, cipher, auth, se, _r1, _r2, slen4, klen4 = KM_HEADER.unpack_from(data)
    if first != KM_FIRST_BYTE or sig != KM_SIGNATURE:
        raise ProtocolError("key material with a bad version or signature")
    kk &= 3
    if kk == 0:
        raise ProtocolError("key material announcing no key")
    salt_len, key_len = slen4 * 4, klen4 * 4
    if salt_len != SALT_SIZE or key_len not in KEY_LENGTHS:
        raise ProtocolError(f"key material with salt {salt_len} / key {key_len} bytes")
    count = 2 if kk == 3 else 1
    wrapped_len = WRAP_OVERHEAD + count * key_len
    start = KM_HEADER_SIZE + salt_len
    if len(data) < start + wrapped_len:
        raise ProtocolError("key material shorter than its wrapped keys")
    return KeyMaterial(
        kk=kk,
        salt=bytes(data[KM_HEADER_SIZE:start]),
        key_length=key_len,
        wrapped=bytes(data[start : start + wrapped_len]),
        cipher=cipher,
        auth=auth,
        se=se,
        keki=keki,
    )


def check_passphrase(passphrase: str | None) -> bytes | None:
    """The passphrase as bytes; libsrt accepts 10..80 bytes, anything else is a
    configuration bug on our side (ValueError)."""
    if passphrase is None:
        return None
    secret = passphrase.encode("utf-8")
    if not 10 <= len(secret) <= 80:
        raise ValueError("SRT passphrase must be 10 to 80 bytes")
    return secret


def derive_kek(passphrase: bytes, salt: bytes, key_length: int) -> bytes:
    """KEK = PBKDF2-HMAC-SHA1(passphrase, last 8 bytes of the salt, 2048, key length)."""
    return hashlib.pbkdf2_hmac("sha1", passphrase, salt[-8:], PBKDF2_ITERATIONS, key_length)


def unwrap_keys(kek: bytes, km: KeyMaterial) -> tuple[bytes | None, bytes | None]:
    """``(even SEK, odd SEK)`` from a KM; raises :class:`KeyMaterialError` when the
    KEK is wrong (the passphrases differ)."""
    try:
        keys = aes_key_unwrap(kek, km.wrapped)
    except (InvalidUnwrap, ValueError) as exc:
        raise KeyMaterialError("key unwrap failed: passphrase mismatch") from exc
    n = km.key_length
    if km.kk == 3:
        return keys[:n], keys[n : 2 * n]
    if km.kk == 1:
        return keys[:n], None
    return None, keys[:n]


def build_key_material(
    kek: bytes, salt: bytes, even: bytes | None, odd: bytes | None
) -> KeyMaterial:
    """Wrap one or both SEKs (even first) into a KM message."""
    keys = (even or b"") + (odd or b"")
    kk = (1 if even else 0) | (2 if odd else 0)
    key_length = len(even or odd or b"")
    if kk == 0 or key_length not in KEY_LENGTHS:
        raise ValueError("need at least one 16/24/32-byte key")
    return KeyMaterial(kk=kk, salt=salt, key_length=key_length, wrapped=aes_key_wrap(kek, keys))


def ctr_iv(salt: bytes, seq: int) -> bytes:
    """Initial counter block: zeros with the packet sequence number at bytes 10..13,
    XOR the first 14 salt bytes; bytes 14..15 count blocks from 0."""
    prefix = int.from_bytes(salt[:14] + b"\x00\x00", "big")
    return (prefix ^ (seq << 16)).to_bytes(16, "big")


class PayloadCipher:
    """AES-CTR for one stream key (encryption and decryption are the same operation)."""

    __slots__ = ("_ctx", "_prefix", "key", "salt")

    def __init__(self, key: bytes, salt: bytes) -> None:
        self.key = key
        self.salt = salt
        self._prefix = int.from_bytes(salt[:14] + b"\x00\x00", "big")
        self._ctx = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()

    def crypt(self, seq: int, data: bytes) -> bytes:
        iv = (self._prefix ^ (seq << 16)).to_bytes(16, "big")
        ctx = self._ctx
        try:
            ctx.reset_nonce(iv)  # cryptography >= 43
        except AttributeError:  # older: a fresh context per packet (correct, slower)
            return Cipher(algorithms.AES(self.key), modes.CTR(iv)).encryptor().update(data)
        return ctx.update(data)


class ReceiveKeys:
    """The receiving side's stream keys, chosen per packet by KK (brief 2.5: keep
    both, replace on each KM refresh). ``ciphers`` is indexed by the KK bits."""

    def __init__(self, passphrase: bytes) -> None:
        self._passphrase = passphrase
        self._kek_cache: dict[tuple[bytes, int], bytes] = {}
        self.ciphers: list[PayloadCipher | None] = [None, None, None, None]
        self.key_length = 0
        self.kek = b""

    @classmethod
    def mirror(cls, send: SendKeys, passphrase: bytes) -> ReceiveKeys:
        """Receive keys for the initiator side: HSv5 uses one key material in both
        directions, so data from the responder is decrypted with our own keys."""
        keys = cls(passphrase)
        keys.ciphers = list(send.ciphers)
        keys.key_length = send.key_length
        return keys

    def install(self, km: KeyMaterial) -> None:
        """Unwrap and install the keys of a KM (raises KeyMaterialError / ProtocolError)."""
        if km.cipher != CIPHER_AES_CTR:
            raise ProtocolError(f"unsupported cipher {km.cipher} (only AES-CTR)")
        cache_key = (km.salt, km.key_length)
        kek = self._kek_cache.get(cache_key)
        if kek is None:
            kek = derive_kek(self._passphrase, km.salt, km.key_length)
            if len(self._kek_cache) >= 4:
                self._kek_cache.clear()
            self._kek_cache[cache_key] = kek
        even, odd = unwrap_keys(kek, km)
        self.kek = kek
        if even is not None:
            self.ciphers[1] = PayloadCipher(even, km.salt)
        if odd is not None:
            self.ciphers[2] = PayloadCipher(odd, km.salt)
        self.key_length = km.key_length

    def on_kmreq(self, data: bytes) -> bytes:
        """Handle a 0x7FFF/3 refresh: the KMRSP body to send back (the echo on
        success, a one-word KM state on failure; old keys stay in place then)."""
        try:
            self.install(parse_key_material(data))
        except KeyMaterialError:
            return struct.pack(">I", KM_STATE_BADSECRET)
        return bytes(data)


class SendKeys:
    """The sending side's stream keys and libsrt's refresh schedule (brief 2.5):
    after ``refresh_rate - preannounce`` packets a fresh key for the other parity is
    announced together with the current one (KK=3, same salt); at ``refresh_rate``
    packets data switches to it; ``preannounce`` packets later the old key is
    decommissioned by announcing the new one alone. ``refresh_rate`` 0 = never."""

    def __init__(
        self,
        kek: bytes,
        salt: bytes,
        key: bytes,
        *,
        kk: int = 1,
        refresh_rate: int = 0,
        preannounce: int = 0,
        random_bytes: RandomBytes | None = None,
    ) -> None:
        self._kek = kek
        self.salt = salt
        if kk not in (1, 2):
            raise ValueError("kk must be 1 (even) or 2 (odd)")
        self.key_length = len(key)
        self._seks: list[bytes | None] = [None, None, None]
        self._seks[kk] = key
        self.ciphers: list[PayloadCipher | None] = [None, None, None, None]
        self.ciphers[kk] = PayloadCipher(key, salt)
        self.kk = kk
        self._count = 0
        self._refresh = refresh_rate
        self._preannounce = preannounce
        self._random = random_bytes
        self._retiring = False
        self.km = build_key_material(kek, salt, self._seks[1], self._seks[2]).encode()
        self.refreshes = 0

    @classmethod
    def mirror(cls, receive: ReceiveKeys) -> SendKeys:
        """Send keys for the responder side: HSv5 uses the caller's key material in
        both directions (no rotation of our own)."""
        for kk in (1, 2):
            cipher = receive.ciphers[kk]
            if cipher is not None:
                return cls(receive.kek, cipher.salt, cipher.key, kk=kk)
        raise ValueError("no receive key installed")

    @classmethod
    def create(
        cls,
        passphrase: bytes,
        key_length: int,
        random_bytes: RandomBytes,
        *,
        refresh_rate: int = 0,
        preannounce: int = 0,
    ) -> SendKeys:
        """Fresh salt and even key (what a caller puts in its KMREQ)."""
        salt = random_bytes(SALT_SIZE)
        kek = derive_kek(passphrase, salt, key_length)
        return cls(
            kek,
            salt,
            random_bytes(key_length),
            refresh_rate=refresh_rate,
            preannounce=preannounce,
            random_bytes=random_bytes,
        )

    def on_packet(self) -> bytes | None:
        """Count one data packet with the current key; returns a KM message to
        announce (0x7FFF/3) when the schedule says so."""
        self._count += 1
        if not self._refresh or self._random is None:
            return None
        count = self._count
        if count == self._refresh - self._preannounce:
            new = 3 - self.kk
            key = self._random(self.key_length)
            self._seks[new] = key
            self.ciphers[new] = PayloadCipher(key, self.salt)
            return self._announce(self._seks[1], self._seks[2])
        if count == self._refresh:
            self.kk = 3 - self.kk
            self._count = 0
            self._retiring = True
            self.refreshes += 1
        elif self._retiring and count == self._preannounce:
            self._retiring = False
            old = 3 - self.kk
            self._seks[old] = None
            self.ciphers[old] = None
            return self._announce(self._seks[1], self._seks[2])
        return None

    def _announce(self, even: bytes | None, odd: bytes | None) -> bytes:
        self.km = build_key_material(self._kek, self.salt, even, odd).encode()
        return self.km
