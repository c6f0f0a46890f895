"""The process's open-file limit, raised at start to what a server needs.

Every HTTP, RTMP and RTMPS connection is a file descriptor, and so are segment
files, the database and child processes' pipes. Distributions start services with
a soft limit of 1024 while allowing far more (the hard limit): a server left at the
soft limit refuses its 1000th viewer with EMFILE. Raising the soft limit up to the
hard one needs no privilege.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

try:
    import resource
except ImportError:  # pragma: no cover - not on Windows
    resource = None  # type: ignore[assignment]

log = logging.getLogger("relaycast")

# When the hard limit is "unlimited", a soft limit this high is plenty and keeps
# anything that sizes tables by the limit reasonable.
UNLIMITED_TARGET = 1 << 20
# Descriptors beyond the connection limits: listeners, database, files, pipes.
HEADROOM = 256


@dataclass(frozen=True, slots=True)
class OpenFileLimit:
    before: int
    now: int
    hard: int


def raise_open_file_limit() -> OpenFileLimit | None:
    """Soft RLIMIT_NOFILE up to the hard limit; None where there is no such limit."""
    if resource is None:  # pragma: no cover
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, target, exc)
            target = soft
    else:
        target = soft
    return OpenFileLimit(soft, target, hard)


def apply(needed: int) -> None:
    """Raise the limit and say in the log what it is, and whether ``needed`` (the
    connections the settings allow, plus headroom) fits in it."""
    limit = raise_open_file_limit()
    if limit is None:  # pragma: no cover
        return
    if limit.now > limit.before:
        log.info("open-file limit %d (raised from %d)", limit.now, limit.before)
    else:
        log.info("open-file limit %d", limit.now)
    if limit.now < needed + HEADROOM:
        log.warning(
            "the open-file limit %d is below the %d connections the settings allow; "
            "raise the hard limit (ulimit -Hn, LimitNOFILE=) or lower them",
            limit.now,
            needed,
        )
