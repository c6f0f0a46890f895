"""31-bit sequence numbers, 26-bit message numbers and 32-bit timestamps (brief 1.4).

Wire values wrap, so they are never compared as raw integers. Inside the receiver
and the sender every wire value is *unwrapped* once, on arrival, into an unbounded
Python int close to a reference ("extended" numbers): from then on ordinary ``<``
and ``-`` are correct, and wrap-around costs nothing on the hot path. Only values
going back onto the wire are masked again.
"""

from __future__ import annotations

SEQ_BITS = 31
SEQ_MOD = 1 << SEQ_BITS
SEQ_MASK = SEQ_MOD - 1
SEQ_HALF = 1 << (SEQ_BITS - 1)

MSGNO_MASK = (1 << 26) - 1

TS_MOD = 1 << 32
TS_MASK = TS_MOD - 1
TS_HALF = 1 << 31


def seq_diff(a: int, b: int) -> int:
    """Circular ``a - b`` for two wire sequence numbers, in [-2**30, 2**30)."""
    d = (a - b) & SEQ_MASK
    return d - SEQ_MOD if d >= SEQ_HALF else d


def seq_add(seq: int, n: int) -> int:
    """``seq + n`` on the 31-bit circle (``n`` may be negative)."""
    return (seq + n) & SEQ_MASK


def seq_lt(a: int, b: int) -> bool:
    """True when ``a`` comes before ``b`` on the circle."""
    return seq_diff(a, b) < 0


def unwrap_seq(seq: int, ref: int) -> int:
    """The extended number nearest to extended ``ref`` whose low 31 bits are ``seq``."""
    d = (seq - ref) & SEQ_MASK
    if d >= SEQ_HALF:
        d -= SEQ_MOD
    return ref + d


def unwrap_ts(ts: int, ref: int) -> int:
    """The extended timestamp nearest to extended ``ref`` whose low 32 bits are ``ts``.

    Packets of one connection are never 35 minutes apart, so "nearest" is always the
    right answer; this replaces the draft's wrap-period rule with the same result.
    """
    d = (ts - ref) & TS_MASK
    if d >= TS_HALF:
        d -= TS_MOD
    return ref + d


def next_msgno(msgno: int) -> int:
    """Message numbers run 1..2**26-1 and restart at 1 (libsrt never sends 0)."""
    msgno = (msgno + 1) & MSGNO_MASK
    return msgno or 1
