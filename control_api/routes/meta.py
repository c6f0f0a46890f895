"""Regions (where live nodes run) and plans (from configuration)."""

from __future__ import annotations

from datetime import UTC, datetime

from control_api.appkeys import SETTINGS, STORE
from control_api.router import Call
from control_api.routes import api
from control_api.schemas.meta import PlanOut, Plans, Regions, ResolutionOut


@api.route("GET", "/v1/regions", summary="Regions with a live node", tag="meta", response=Regions)
async def list_regions(call: Call[None, None]) -> Regions:
    """In the configured order; a region whose nodes all stopped (or whose leases
    lapsed) is left out."""
    app = call.request.app
    live = {node.region for node in await app[STORE].nodes.live(datetime.now(UTC))}
    return Regions(regions=[r for r in app[SETTINGS].regions if r in live])


@api.route("GET", "/v1/plans", summary="Plans and their limits", tag="meta", response=Plans)
async def list_plans(call: Call[None, None]) -> Plans:
    plans = call.request.app[SETTINGS].plans
    return Plans(
        plans={
            name: PlanOut(
                max_clients=p.max_clients,
                max_resolution=ResolutionOut(
                    width=p.max_resolution.width, height=p.max_resolution.height
                ),
                max_frame_rate=p.max_frame_rate,
                max_bitrate=p.max_bitrate,
            )
            for name, p in plans.items()
        }
    )
