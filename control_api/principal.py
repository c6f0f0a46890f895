"""Who is calling: the authenticated API key, reduced to what handlers need."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    environment_id: str
    access: str
    cors_origins: tuple[str, ...]

    @property
    def restricted(self) -> bool:
        return self.access == "restricted"


PRINCIPAL = web.RequestKey("principal", Principal)
