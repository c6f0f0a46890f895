"""HeapTrimmer: trims only after a big release, one pending trim, at most one per interval."""

from __future__ import annotations

import asyncio

from server.ingest.heap import TRIM_AFTER_BYTES, HeapTrimmer


async def test_small_releases_never_trim_big_ones_are_debounced() -> None:
    calls: list[int] = []

    def trim(pad: int) -> int:
        calls.append(pad)
        return 1

    trimmer = HeapTrimmer(interval=0.2, trim=trim)
    trimmer.released(TRIM_AFTER_BYTES - 1)
    await asyncio.sleep(0.1)
    assert calls == []

    trimmer.released(TRIM_AFTER_BYTES)
    trimmer.released(10 * TRIM_AFTER_BYTES)  # one trim is pending already
    await asyncio.sleep(0.1)
    assert calls == [0]

    trimmer.released(TRIM_AFTER_BYTES)  # within the interval: waits for it
    await asyncio.sleep(0.05)
    assert calls == [0]
    await asyncio.sleep(0.2)
    assert calls == [0, 0] and trimmer.trims == 2


async def test_close_cancels_a_pending_trim() -> None:
    calls: list[int] = []
    trimmer = HeapTrimmer(trim=lambda pad: calls.append(pad) or 1)
    trimmer.released(TRIM_AFTER_BYTES)
    trimmer.close()
    await asyncio.sleep(0.1)
    assert calls == []


def test_without_glibc_nothing_happens() -> None:
    HeapTrimmer(trim=None).released(TRIM_AFTER_BYTES)  # no loop needed, no error
