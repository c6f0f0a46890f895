"""Which addresses webhooks may POST to: the URL-import guard, with its own setting.

A webhook URL is chosen by whoever holds an API key, and the server makes the
request, so the same server-side request forgery guard as URL imports applies
(``control_api.media_library.targets``): never link-local (cloud metadata),
multicast or this server's own HTTP port; private and loopback addresses only with
``webhooks.allow_private_targets``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from control_api.media_library.targets import IPAddress, TargetPolicy


@dataclass(frozen=True, slots=True)
class WebhookTargets(TargetPolicy):
    def refusal(self, address: IPAddress, port: int) -> str | None:
        always = TargetPolicy(allow_private=True, own_port=self.own_port).refusal(address, port)
        if always or self.allow_private:
            return always
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not address.is_global:
            return (
                f"{address} is a private or local address; "
                "set webhooks.allow_private_targets to allow it"
            )
        return None
