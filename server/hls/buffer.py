"""Bytes of a part or segment that may still be growing while it is served.

The packager appends and finishes; the HTTP layer reads what is there from an offset and
waits (through the segmenter's change callback) for more until ``complete``. This is the
one object a preload-hinted part request is answered from, so it never needs asyncio.
"""

from __future__ import annotations

Data = bytes | memoryview


class PartBuffer:
    """Append-only bytes with a "complete" flag; reads never copy."""

    __slots__ = ("_chunks", "_complete", "_joined", "_size")

    def __init__(self) -> None:
        self._chunks: list[Data] = []
        self._joined: Data | None = b""
        self._size = 0
        self._complete = False

    @property
    def complete(self) -> bool:
        """True once no more bytes will be appended."""
        return self._complete

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    def append(self, data: bytes) -> None:
        """Add bytes at the end (packager side); empty appends are ignored."""
        if self._complete:
            raise RuntimeError("append to a complete buffer")
        if data:
            self._chunks.append(data)
            self._size += len(data)
            self._joined = None

    def finish(self) -> None:
        """Mark the buffer complete (packager side)."""
        self._complete = True

    @property
    def pieces(self) -> tuple[Data, ...]:
        """The bytes as appended, without joining them (for a vectored write)."""
        return tuple(self._chunks)

    @property
    def data(self) -> Data:
        """Everything written so far as one bytes-like object (joined once, then cached)."""
        if self._joined is None:
            self._joined = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
            self._chunks = [self._joined]
        return self._joined

    def pieces_from(self, offset: int = 0) -> list[Data]:
        """The bytes after ``offset`` available now, as appended (the first one a view
        when ``offset`` falls inside it), never joined: a response streaming a growing
        part sends each new chunk by reference instead of re-joining the whole part on
        every append. Walks back from the newest chunk, so it costs the new chunks only."""
        missing = self._size - offset
        pieces: list[Data] = []
        for chunk in reversed(self._chunks):
            if missing <= 0:
                break
            size = len(chunk)
            pieces.append(chunk if size <= missing else memoryview(chunk)[size - missing :])
            missing -= size
        pieces.reverse()
        return pieces

    def share(self, view: memoryview) -> None:
        """Replace the stored bytes by an identical view into a larger buffer (the parent
        segment), so a finished part costs no memory of its own."""
        if len(view) != self._size:
            raise ValueError("shared view must hold exactly this buffer's bytes")
        self._chunks = [view]
        self._joined = view
