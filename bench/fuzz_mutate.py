"""Seeded mutations of valid protocol vectors, for ``bench.fuzz``.

Random bytes alone rarely get past a parser's first length or magic check, so most
inputs are valid vectors with a few targeted edits: the edits that historically
break hand-written parsers (a length field set to 0 / one past the end / 2**32-1,
a truncation mid-field, two messages spliced at a random point). Everything draws
from one ``random.Random``: the same seed gives the same inputs, so a failure found
in a run is reproduced with ``--seed`` and the input index.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

# Values a length / count / size field is most likely to be mishandled at.
BOUNDARY = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0xFFFFFF, 0x7FFFFFFF)
MAX_GROWTH = 4096


def _bit_flip(rng: random.Random, data: bytearray, _: Sequence[bytes]) -> None:
    if data:
        pos = rng.randrange(len(data))
        data[pos] ^= 1 << rng.randrange(8)


def _byte_set(rng: random.Random, data: bytearray, _: Sequence[bytes]) -> None:
    if data:
        data[rng.randrange(len(data))] = rng.choice((0, 0xFF, 0x7F, 0x80, rng.randrange(256)))


def _truncate(rng: random.Random, data: bytearray, _: Sequence[bytes]) -> None:
    if data:
        del data[rng.randrange(len(data)) :]


def _length_field(rng: random.Random, data: bytearray, _: Sequence[bytes]) -> None:
    """Overwrite 1-4 bytes big-endian with a boundary value (or the buffer's length +-1)."""
    width = rng.choice((1, 2, 3, 4))
    if len(data) < width:
        return
    pos = rng.randrange(len(data) - width + 1)
    value = rng.choice((*BOUNDARY, len(data) - pos, len(data) - pos + 1, len(data) - pos - 1))
    data[pos : pos + width] = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "big")


def _splice(rng: random.Random, data: bytearray, corpus: Sequence[bytes]) -> None:
    other = rng.choice(corpus)
    cut = rng.randrange(len(data) + 1)
    data[cut:] = other[rng.randrange(len(other) + 1) :]


def _insert(rng: random.Random, data: bytearray, _: Sequence[bytes]) -> None:
    pos = rng.randrange(len(data) + 1)
    data[pos:pos] = rng.randbytes(rng.choice((1, 2, 4, rng.randrange(1, 64))))


def _delete(rng: random.Random, data: bytearray, _: Sequence[bytes]) -> None:
    if data:
        pos = rng.randrange(len(data))
        del data[pos : pos + rng.choice((1, 2, 4, rng.randrange(1, 64)))]


def _duplicate(rng: random.Random, data: bytearray, _: Sequence[bytes]) -> None:
    if data:
        start = rng.randrange(len(data))
        piece = data[start : start + rng.randrange(1, 256)]
        pos = rng.randrange(len(data) + 1)
        data[pos:pos] = piece


Mutation = Callable[[random.Random, bytearray, Sequence[bytes]], None]
MUTATIONS: tuple[Mutation, ...] = (
    _bit_flip,
    _bit_flip,
    _byte_set,
    _byte_set,
    _length_field,
    _length_field,
    _truncate,
    _splice,
    _insert,
    _delete,
    _duplicate,
)


def mutate(rng: random.Random, corpus: Sequence[bytes]) -> bytes:
    """One input: 1 in 32 is random bytes, the rest a corpus vector with 1-4 edits."""
    if rng.randrange(32) == 0:
        return rng.randbytes(rng.randrange(0, 512))
    data = bytearray(rng.choice(corpus))
    limit = len(data) + MAX_GROWTH
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        rng.choice(MUTATIONS)(rng, data, corpus)
        if len(data) > limit:
            del data[limit:]
    return bytes(data)


def splits(rng: random.Random, data: bytes) -> list[bytes]:
    """How a stream arrives: whole, one byte at a time, or in random-sized reads."""
    mode = rng.randrange(8)
    if mode == 0:
        return [data[i : i + 1] for i in range(len(data))]
    if mode < 4:
        return [data]
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        step = rng.randrange(1, 600)
        out.append(data[pos : pos + step])
        pos += step
    return out
