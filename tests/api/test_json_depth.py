"""Deeply nested JSON bodies are refused with 400 problem JSON on every JSON endpoint.

A body nested 1000 levels deep used to exhaust the interpreter's recursion limit
(a 500); now no array or object may sit deeper than ``api.max_json_depth``.
"""

from __future__ import annotations

import re

import pytest

from control_api.problems import Problem
from control_api.router import parse_json
from control_api.routes import api as operations
from tests.api.conftest import Api, ApiFactory

JSON = {"Content-Type": "application/json"}
BODY_OPERATIONS = [op for op in operations.operations if op.body is not None]


def nested(depth: int) -> str:
    """An object whose ``name`` holds arrays ``depth`` levels deep in all."""
    return '{"name": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


@pytest.mark.parametrize("depth", [1000, 100_000])
async def test_every_json_endpoint_refuses_a_deep_body_with_400(api: Api, depth: int) -> None:
    assert BODY_OPERATIONS
    for op in BODY_OPERATIONS:
        path = re.sub(r"\{\w+\}", "x", op.path)
        reply = await api.call(op.method, path, raw=nested(depth), headers=JSON)
        assert reply.status == 400, (op.method, path, reply.status, reply.text[:300])
        assert reply.headers["Content-Type"].startswith("application/problem+json")
        assert reply.json["type"].endswith("/json-too-deep"), reply.json


async def test_the_depth_limit_is_a_setting(make_api: ApiFactory) -> None:
    api = await make_api(api={"max_json_depth": 4})
    within = await api.call("POST", "/v1/live-streams", raw=nested(4), headers=JSON)
    assert within.status == 422, within.text  # parsed; the model refuses a list as name
    deeper = await api.call("POST", "/v1/live-streams", raw=nested(5), headers=JSON)
    assert deeper.status == 400 and "4 levels" in deeper.json["detail"], deeper.text


def test_scalars_and_flat_bodies_pass_untouched() -> None:
    assert parse_json(b'{"a": [1, {"b": 2}]}', 3) == {"a": [1, {"b": 2}]}
    assert parse_json(b"", 3) is None and parse_json(b"7", 1) == 7
    with pytest.raises(Problem) as refused:
        parse_json(b'{"a": [1, {"b": 2}]}', 2)
    assert refused.value.status == 400 and refused.value.slug == "json-too-deep"
