"""Which queue item plays next: read at every item boundary, so edits apply there."""

from __future__ import annotations

from collections.abc import Sequence

from server.playout.ports import PlayoutState, QueueEntry


def after(entries: Sequence[QueueEntry], item_id: str, position: int) -> QueueEntry | None:
    """The entry after ``item_id``; if it was removed meanwhile, the one now at the
    position it had (the store closes gaps), so removing the item on air never
    skips a second one."""
    for index, entry in enumerate(entries):
        if entry.item_id == item_id:
            return entries[index + 1] if index + 1 < len(entries) else None
    return next((e for e in entries if e.position >= position), None)


def following(
    entries: Sequence[QueueEntry], item_id: str, position: int, loop: bool
) -> tuple[QueueEntry | None, bool]:
    """The next entry and whether reaching it wrapped round the queue."""
    found = after(entries, item_id, position)
    if found is None and loop and entries:
        return entries[0], True
    return found, False


def resume_point(entries: Sequence[QueueEntry], state: PlayoutState) -> tuple[QueueEntry, float]:
    """Where a (re)started channel begins: its saved item and offset if the item is
    still queued, else the top of the queue. ``entries`` must not be empty."""
    for entry in entries:
        if entry.item_id == state.item_id:
            return entry, max(0.0, state.position)
    return entries[0], 0.0
