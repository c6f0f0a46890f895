"""Regions, plans and health."""

from __future__ import annotations

from control_api.schemas.common import ApiModel


class Regions(ApiModel):
    regions: list[str]


class ResolutionOut(ApiModel):
    width: int
    height: int


class PlanOut(ApiModel):
    max_clients: int
    max_resolution: ResolutionOut
    max_frame_rate: float
    max_bitrate: int


class Plans(ApiModel):
    plans: dict[str, PlanOut]


class Health(ApiModel):
    status: str
    version: str
    node: str
