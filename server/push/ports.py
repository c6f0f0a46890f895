"""What the push manager needs from the control plane, declared here.

The media plane never imports ``control_api``: the composition root hands the
manager an object satisfying :class:`DestinationSource`, and registers
:class:`PushListener` implementations (webhooks) on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class DestinationSpec:
    """One configured destination as the pusher needs it.

    ``url`` is the assembled publish URL with the stream key and passphrase in it,
    so it is kept out of ``repr``; ``redacted`` is what logs show. ``secrets`` are
    the raw values to scrub from any error text a peer sends back.
    """

    destination_id: str
    url: str = field(repr=False)
    redacted: str
    enabled: bool = True
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def scrub(self, text: str) -> str:
        """``text`` with every secret replaced by ``***`` (servers echo keys back)."""
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return text


class DestinationSource(Protocol):
    async def destinations(self, stream_id: str) -> list[DestinationSpec]:
        """Every destination of the stream, enabled or not, in a stable order."""


class PushListener(Protocol):
    def destination_error(
        self, environment_id: str, stream_id: str, destination_id: str, error: str
    ) -> None:
        """A destination went to ``error`` (once per outage, not per retry); must not
        block or raise. ``error`` never contains the stream key or passphrase."""
