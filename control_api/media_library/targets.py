"""Which addresses a URL import may connect to (server-side request forgery guard).

The check runs on the addresses the connection will really use: a resolver that
refuses forbidden results (so a name cannot resolve to one address when checked and
another when connected), plus a check of literal IP hosts, which never reach a
resolver. Redirects are followed by hand so every hop goes through both again.

Always refused: link-local addresses (169.254.0.0/16 and fe80::/10, where cloud
metadata services live), multicast, and this server's own HTTP port on a local
address. Refused unless ``media.allow_private_import_targets``: every other address
that is not globally routable (loopback, RFC 1918, unique-local, CGNAT, reserved).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(OSError):
    """The import's target is an address this server will not fetch from."""


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    allow_private: bool
    own_port: Callable[[], int]

    def refusal(self, address: IPAddress, port: int) -> str | None:
        """Why ``address:port`` is refused, or None when it may be fetched."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if address.is_link_local:
            return f"{address} is a link-local address (cloud metadata lives there)"
        if address.is_multicast:
            return f"{address} is a multicast address"
        if port == self.own_port() and (address.is_loopback or address.is_unspecified):
            return f"{address}:{port} is this server's own HTTP port"
        if not self.allow_private and not address.is_global:
            return (
                f"{address} is a private or local address; "
                "set media.allow_private_import_targets to allow it"
            )
        return None

    def check_host(self, host: str, port: int) -> None:
        """Refuse a literal IP host (names are checked by :class:`GuardedResolver`)."""
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return
        reason = self.refusal(address, port)
        if reason:
            raise TargetRefused(reason)


class GuardedResolver(AbstractResolver):
    """Resolves names as usual and refuses the host if any address it got is forbidden."""

    def __init__(self, policy: TargetPolicy) -> None:
        self._policy = policy
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            reason = self._policy.refusal(ipaddress.ip_address(result["host"]), port)
            if reason:
                raise TargetRefused(f"{host} resolves to {reason}")
        return results

    async def close(self) -> None:
        await self._inner.close()


def refusal_in(exc: BaseException) -> str | None:
    """The TargetRefused message somewhere in an aiohttp error's chain, if any."""
    seen: set[int] = set()
    current: Any = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, TargetRefused):
            return str(current)
        current = getattr(current, "os_error", None) or current.__cause__ or current.__context__
    return None
