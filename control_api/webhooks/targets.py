"""Which addresses webhooks may POST to: the URL-import guard, with its own setting.

A webhook URL is chosen by whoever holds an API key, and the server makes the
request, so the same server-side request forgery guard as URL imports applies
(``control_api.media_library.targets``): never link-local (cloud metadata),
multicast or this server's own HTTP port; private and loopback addresses only with
``webhooks.allow_private_targets``.

The guard runs twice: when a URL is registered (so a receiver that will never be
reached is refused at once, with the reason) and on every attempt (names can
resolve elsewhere later).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

from yarl import URL

from control_api.media_library.targets import (
    GuardedResolver,
    IPAddress,
    TargetPolicy,
    TargetRefused,
)

ALWAYS = "refused whatever webhooks.allow_private_targets says"


@dataclass(frozen=True, slots=True)
class WebhookTargets(TargetPolicy):
    def refusal(self, address: IPAddress, port: int) -> str | None:
        always = TargetPolicy(allow_private=True, own_port=self.own_port).refusal(address, port)
        if always:
            return f"{always}; {ALWAYS}"
        if self.allow_private:
            return None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not address.is_global:
            return (
                f"{address} is a private or local address; "
                "set webhooks.allow_private_targets to allow it"
            )
        return None


async def url_refusal(targets: TargetPolicy, url: str, resolve_seconds: float) -> str | None:
    """Why ``url`` can never be delivered to, checked on the addresses its host has now.

    A name that does not resolve (yet) is accepted: whether it ever may is decided
    by the same guard at delivery time.
    """
    try:
        parsed = URL(url)
    except ValueError as exc:  # e.g. brackets around something that is no IPv6 address
        return f"not a valid URL ({exc})"
    host = parsed.host or ""
    port = parsed.port or 0
    resolver = GuardedResolver(targets)
    try:
        targets.check_host(host, port)
        if not _is_ip(host):
            await asyncio.wait_for(resolver.resolve(host, port, socket.AF_UNSPEC), resolve_seconds)
    except TargetRefused as exc:
        return str(exc)
    except (OSError, TimeoutError):  # not resolvable now
        return None
    finally:
        await resolver.close()
    return None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
