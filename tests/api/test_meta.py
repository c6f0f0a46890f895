"""Regions, plans, health, the OpenAPI document and the docs page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from openapi_spec_validator import validate

from control_api.store.nodes import NodeInfo
from server import accel
from tests.api.conftest import Api, ApiFactory


def _node(name: str, region: str) -> NodeInfo:
    return NodeInfo(name, region, f"http://{name}:8080", None, None)


async def test_regions_list_those_with_a_live_node(make_api: ApiFactory) -> None:
    api = await make_api(regions=["eu-1", "us-1", "ap-1"], default_region="eu-1")
    now = datetime.now(UTC)
    assert (await api.call("GET", "/v1/regions")).json == {"regions": []}
    for name, region in (("b", "us-1"), ("a", "eu-1"), ("a2", "eu-1")):
        await api.store.nodes.heartbeat(_node(name, region), now, now, 15)
    await api.store.nodes.heartbeat(_node("gone", "ap-1"), now, now - timedelta(seconds=20), 15)
    assert (await api.call("GET", "/v1/regions")).json == {"regions": ["eu-1", "us-1"]}
    await api.store.nodes.leave("b")
    assert (await api.call("GET", "/v1/regions")).json == {"regions": ["eu-1"]}


async def test_plans_come_from_configuration(make_api: ApiFactory) -> None:
    plans = {
        "tiny": {
            "max_clients": 5,
            "max_resolution": {"width": 640, "height": 360},
            "max_frame_rate": 25,
            "max_bitrate": 1_000_000,
        }
    }
    api = await make_api(
        plans=plans, default_plan="tiny", regions=["eu-1", "us-1"], default_region="eu-1"
    )
    assert (await api.call("GET", "/v1/plans")).json == {
        "plans": {
            "tiny": {
                "maxClients": 5,
                "maxResolution": {"width": 640, "height": 360},
                "maxFrameRate": 25.0,
                "maxBitrate": 1_000_000,
            }
        }
    }
    s = await api.new_stream()
    assert (s["plan"], s["region"]) == ("tiny", "eu-1")


async def test_default_plans(api: Api) -> None:
    plans = (await api.call("GET", "/v1/plans")).json["plans"]
    assert set(plans) == {"basic", "standard", "pro"}
    assert plans["basic"]["maxResolution"] == {"width": 1280, "height": 720}


async def test_healthz_needs_no_key(api: Api) -> None:
    reply = await api.call("GET", "/healthz", key=None)
    assert reply.status == 200 and reply.json["status"] == "ok"
    assert reply.json["node"] == api.settings.node.resolved_name()
    assert reply.json["mediaPath"] == accel.summary()
    assert reply.json["mediaPath"] in ("compiled", "pure", "mixed")


async def test_metrics_name_the_node_that_answered(make_api: ApiFactory) -> None:
    api = await make_api(node={"name": "box-2"})
    text = (await api.call("GET", "/metrics", key=None)).text
    assert 'relaycast_node_info{node="box-2",region="local"} 1.0' in text
    assert (await api.call("GET", "/healthz", key=None)).json["node"] == "box-2"


async def test_openapi_is_valid_31_and_covers_every_route(api: Api) -> None:
    reply = await api.call("GET", "/v1/openapi.json", key=None)
    assert reply.status == 200
    doc = reply.json
    assert doc["openapi"].startswith("3.1")
    validate(doc)
    paths = doc["paths"]
    for path, method in [
        ("/v1/live-streams", "post"),
        ("/v1/live-streams/{streamId}/rotate-key", "post"),
        ("/v1/auth/token", "post"),
        ("/v1/api-keys/{keyId}", "delete"),
        ("/v1/plans", "get"),
        ("/v1/sessions/{sessionId}", "get"),
    ]:
        assert method in paths[path], (path, method)
    create = doc["components"]["schemas"]["StreamCreate"]
    assert create["additionalProperties"] is False
    assert "srtPassphrase" in create["properties"] and create["required"] == ["name"]
    assert "streamKey" in doc["components"]["schemas"]["Ingest"]["properties"]
    assert paths["/v1/auth/token"]["post"]["security"] == []


async def test_docs_page_and_assets_are_local(api: Api) -> None:
    page = await api.call("GET", "/docs", key=None)
    assert page.status == 200 and "/v1/openapi.json" in page.text
    assert "https://" not in page.text  # no CDN
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        reply = await api.call("GET", f"/docs/assets/{asset}", key=None)
        assert reply.status == 200 and len(reply.text) > 10_000
