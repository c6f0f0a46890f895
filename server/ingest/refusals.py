"""Why a publish was refused, and where a refusal goes.

Every protocol refuses for the same reasons and reports them the same way: counted
(metrics), logged at a sampled rate (a peer can cause refusals at packet rate) and
handed to the sinks (the diagnostics log behind ``GET /v1/ingest/failures``). Kept
apart from the manager so adapters can report their own refusals (bad stream IDs,
protocol errors) without going through the claim.
"""

from __future__ import annotations

import enum
import logging
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from server.bus import StreamGrant
from server.ingest.ports import IngestRefusal, RefusalSink
from server.logfields import media_fields
from server.logsample import SampledLog

log = logging.getLogger("relaycast.ingest")


class RefusalReason(enum.StrEnum):
    """The reasons ``GET /v1/ingest/failures`` reports; shared by every protocol."""

    UNKNOWN_KEY = "unknown-key"
    STOPPED = "stream-stopped"
    IN_USE = "key-in-use"
    WRONG_APP = "wrong-app"
    BAD_PASSPHRASE = "bad-passphrase"  # noqa: S105 - a reason, not a secret
    LIMITS = "limits"
    PROTOCOL_ERROR = "protocol-error"
    # players (RTMP play, SRT m=request) are refused for these
    NOT_LIVE = "stream-not-live"
    PLAYBACK_TOKEN = "playback-token"  # noqa: S105 - a reason, not a secret
    MAX_CLIENTS = "max-clients"
    CODEC_UNSUPPORTED = "codec-unsupported"


class Refused(Exception):
    """A publisher may not publish; ``str()`` is the detail shown to operators."""

    def __init__(self, reason: RefusalReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class RefusalReporter:
    """Counts (``counts``, by ``protocol:reason``), logs (sampled) and hands on refusals."""

    def __init__(self, sampled: SampledLog, sinks: Sequence[RefusalSink] = ()) -> None:
        self.counts: Counter[str] = Counter()
        self.log = sampled
        self.sinks: list[RefusalSink] = list(sinks)

    def report(
        self,
        protocol: str,
        remote: str,
        attempted: str,
        reason: RefusalReason,
        detail: str,
        grant: StreamGrant | None = None,
        connection: str | None = None,
        role: str = "publisher",
    ) -> None:
        """``attempted`` is what the encoder sent, key masked; ``connection`` the
        adapter's connection id, for the log line; ``role`` publisher or player."""
        self.counts[f"{protocol}:{reason}"] += 1
        self.log.log(
            logging.WARNING,
            "refused %s %s %s (%s): %s",
            protocol,
            role,
            remote,
            attempted,
            detail,
            extra=media_fields(grant.stream_id if grant else None, connection_id=connection),
        )
        refusal = IngestRefusal(
            at=datetime.now(UTC),
            protocol=protocol,
            remote=remote,
            attempted=attempted,
            reason=str(reason),
            detail=detail,
            environment_id=grant.environment_id if grant else None,
            stream_id=grant.stream_id if grant else None,
        )
        for sink in self.sinks:
            try:
                sink.refused(refusal)
            except Exception:  # a diagnostics sink must never break ingest
                log.exception("refusal sink failed")
