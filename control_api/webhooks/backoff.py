"""When to try a failed delivery again: exponential backoff with jitter, capped.

Jitter spreads the retries of many deliveries that failed together (a receiver that
was down) so they do not all come back in the same second.
"""

from __future__ import annotations


def retry_delay(attempts: int, base: float, cap: float, rand: float) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt (1, 2, …).

    ``rand`` in [0, 1) picks the point in the upper half of the window ("equal
    jitter"): the delay still grows with every failure, never below half the step.
    """
    step = min(cap, base * 2.0 ** min(max(attempts - 1, 0), 62))
    return step / 2 + step / 2 * rand
