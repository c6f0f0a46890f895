"""Log lines a peer can trigger at will: counted always, printed at most N a second.

A refused publish is worth a line, but a peer decides how many it causes: SRT
conclusions cost the sender one UDP datagram each, and a flood of them with a bad key
once wrote a line per packet (48 k lines, 9 MB in 20 s), burying everything else.
The counters (metrics, the refusal sinks) still see every event; the log keeps the
first ``per_second`` of each one-second window and one summary line for the rest,
written when the window ends (a timer, when a loop is running) or, failing that,
before the next line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

WINDOW = 1.0


class SampledLog:
    """A logger for one kind of peer-triggered line (``what`` names it in the summary)."""

    def __init__(
        self,
        logger: logging.Logger,
        per_second: int,
        what: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.per_second = per_second
        self.what = what
        self.clock = clock
        self.suppressed_total = 0
        self._window_start = float("-inf")
        self._lines = 0
        self._suppressed = 0
        self._summary: asyncio.TimerHandle | None = None

    def log(
        self,
        level: int,
        msg: str,
        *args: object,
        via: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
        **kwargs: Any,
    ) -> bool:
        """Log (True) or count as suppressed (False). ``via``: another logger (or a
        connection's adapter) whose lines share this budget."""
        now = self.clock()
        if now - self._window_start >= WINDOW:
            self.flush()
            self._window_start, self._lines = now, 0
        if self._lines < self.per_second:
            self._lines += 1
            (via or self.logger).log(level, msg, *args, **kwargs)
            return True
        self._suppressed += 1
        self.suppressed_total += 1
        if self._summary is None:
            self._schedule(self._window_start + WINDOW - now)
        return False

    def flush(self) -> None:
        """Write the summary of what this window suppressed (if anything)."""
        if self._summary is not None:
            self._summary.cancel()
            self._summary = None
        if self._suppressed:
            self.logger.warning(
                "%d more %s in the last %.0f s not logged (all counted)",
                self._suppressed,
                self.what,
                WINDOW,
            )
            self._suppressed = 0

    def _schedule(self, delay: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a unit test, a CLI): the next line flushes
            return
        self._summary = loop.call_later(max(delay, 0.0), self.flush)
