"""Bit-level reading for the few places that need it (SPS, AV1 sequence header, ASC).

These run once per configuration, never per frame, so clarity beats speed here; the
reader still avoids per-bit Python loops by treating the buffer as one big integer.
"""

from __future__ import annotations

from .errors import MediaFormatError

_MAX_EXP_GOLOMB_ZEROS = 31


def remove_emulation_prevention(nal: bytes) -> bytes:
    """Turn an escaped NAL unit into its RBSP by dropping 0x03 after two zero bytes.

    ``bytes.replace`` scans left to right without overlap, which matches the decoder's
    rule (the zero count restarts after an emulation-prevention byte).
    """
    return nal.replace(b"\x00\x00\x03", b"\x00\x00")


class BitReader:
    """MSB-first bit reader with exp-Golomb codes; running past the end is a format error."""

    __slots__ = ("_bits", "_pos", "_value")

    def __init__(self, data: bytes) -> None:
        self._value = int.from_bytes(data, "big")
        self._bits = len(data) * 8
        self._pos = 0

    @property
    def position(self) -> int:
        """Bits consumed so far."""
        return self._pos

    @property
    def remaining(self) -> int:
        """Bits not yet consumed."""
        return self._bits - self._pos

    def u(self, n: int) -> int:
        """Read an unsigned ``n``-bit value."""
        end = self._pos + n
        if end > self._bits:
            raise MediaFormatError("bitstream ended early")
        value = (self._value >> (self._bits - end)) & ((1 << n) - 1)
        self._pos = end
        return value

    def flag(self) -> bool:
        """Read one bit as a boolean."""
        return self.u(1) == 1

    def skip(self, n: int) -> None:
        """Skip ``n`` bits."""
        if self._pos + n > self._bits:
            raise MediaFormatError("bitstream ended early")
        self._pos += n

    def _leading_zeros(self) -> int:
        remaining = self._bits - self._pos
        window = self._value & ((1 << remaining) - 1) if remaining > 0 else 0
        if window == 0:
            raise MediaFormatError("bitstream ended inside a variable-length code")
        return remaining - window.bit_length()

    def ue(self) -> int:
        """Read an unsigned exp-Golomb code ue(v)."""
        zeros = self._leading_zeros()
        if zeros > _MAX_EXP_GOLOMB_ZEROS:
            raise MediaFormatError("exp-Golomb code too long")
        self._pos += zeros + 1
        return (1 << zeros) - 1 + (self.u(zeros) if zeros else 0)

    def se(self) -> int:
        """Read a signed exp-Golomb code se(v)."""
        k = self.ue()
        return (k + 1) >> 1 if k & 1 else -(k >> 1)

    def uvlc(self) -> int:
        """Read AV1's uvlc(): like ue(v) but saturating at 2**32 - 1 instead of failing."""
        zeros = self._leading_zeros()
        self._pos += zeros + 1
        if zeros >= 32:
            return (1 << 32) - 1
        return (1 << zeros) - 1 + (self.u(zeros) if zeros else 0)


class BitWriter:
    """MSB-first bit writer: builds AudioSpecificConfig and the SPS test vectors."""

    __slots__ = ("_bits", "_value")

    def __init__(self) -> None:
        self._value = 0
        self._bits = 0

    def u(self, n: int, value: int) -> None:
        """Append ``value`` as an unsigned ``n``-bit field."""
        if value < 0 or value >> n:
            raise ValueError(f"{value} does not fit in {n} bits")
        self._value = (self._value << n) | value
        self._bits += n

    def flag(self, value: bool) -> None:
        """Append one bit."""
        self.u(1, 1 if value else 0)

    def ue(self, value: int) -> None:
        """Append ``value`` as ue(v)."""
        code = value + 1
        self.u(2 * code.bit_length() - 1, code)

    def se(self, value: int) -> None:
        """Append ``value`` as se(v)."""
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def rbsp_trailing(self) -> None:
        """Append the stop bit and zero bits up to the next byte boundary."""
        self.u(1, 1)
        self.align()

    def align(self) -> None:
        """Pad with zero bits up to the next byte boundary."""
        pad = -self._bits % 8
        self._value <<= pad
        self._bits += pad

    def to_bytes(self) -> bytes:
        """The bits written so far, zero-padded to whole bytes."""
        pad = -self._bits % 8
        return (self._value << pad).to_bytes((self._bits + pad) // 8, "big")
