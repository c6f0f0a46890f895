"""OpenAPI 3.1 generated from the operation table and its pydantic models."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from control_api.router import Operation
from control_api.schemas.common import ProblemDetail

REF = "#/components/schemas/{model}"
_COMMON_ERRORS = {
    400: "Malformed request",
    401: "Missing, invalid, revoked or expired credentials",
    403: "The key's access level does not allow this",
    404: "No such resource in this environment",
    409: "The resource's state does not allow this",
    413: "Body too large",
    415: "Body is not JSON",
    422: "Validation failed; `errors` names each field",
    429: "Rate limit exceeded; see Retry-After",
}
_RATE_HEADERS = {
    name: {"schema": {"type": "integer"}, "description": desc}
    for name, desc in (
        ("RateLimit-Limit", "Requests allowed per window"),
        ("RateLimit-Remaining", "Requests left in this window"),
        ("RateLimit-Reset", "Seconds until the window resets"),
    )
}


def _drop_null_defaults(node: Any) -> Any:
    """Optional request fields default to "absent", which JSON Schema cannot say as null."""
    if isinstance(node, dict):
        if node.get("default", ...) is None:
            del node["default"]
        for value in node.values():
            _drop_null_defaults(value)
    elif isinstance(node, list):
        for value in node:
            _drop_null_defaults(value)
    return node


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, model: type[BaseModel], mode: str) -> dict[str, str]:
        schema = _drop_null_defaults(
            model.model_json_schema(by_alias=True, ref_template=REF, mode=mode)  # type: ignore[arg-type]
        )
        for name, sub in schema.pop("$defs", {}).items():
            self.components.setdefault(name, sub)
        self.components[model.__name__] = schema
        return {"$ref": REF.format(model=model.__name__)}


def _parameters(op: Operation, schemas: _Schemas) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", op.path)
    ]
    if op.query is not None:
        schema = op.query.model_json_schema(by_alias=True, ref_template=REF)
        for name, prop in schema.get("properties", {}).items():
            description = prop.pop("description", "")
            params.append(
                {
                    "name": name,
                    "in": "query",
                    "required": False,
                    "schema": prop,
                    "description": description,
                }
            )
    return params


def _responses(op: Operation, schemas: _Schemas) -> dict[str, Any]:
    problem = {"application/problem+json": {"schema": schemas.ref(ProblemDetail, "serialization")}}
    ok: dict[str, Any] = {"description": "Success", "headers": _RATE_HEADERS}
    if op.response is not None:
        ok["content"] = {"application/json": {"schema": schemas.ref(op.response, "serialization")}}
    codes = set(op.errors) | {429}
    if op.auth:
        codes |= {401, 403}
    if op.body is not None:
        codes |= {400, 413, 415, 422}
    if op.query is not None:
        codes.add(422)
    responses: dict[str, Any] = {str(op.status): ok}
    for code in sorted(codes):
        responses[str(code)] = {"description": _COMMON_ERRORS[code], "content": problem}
    return responses


def _operation(op: Operation, schemas: _Schemas) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": _parameters(op, schemas),
        "responses": _responses(op, schemas),
    }
    description = op.description
    if op.allows_restricted_keys:
        description = (description + "\n\nAllowed for restricted keys.").strip()
    if description:
        spec["description"] = description
    if op.body is not None:
        spec["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schemas.ref(op.body, "validation")}},
        }
    if not op.auth:
        spec["security"] = []
    return spec


def build_openapi(
    operations: list[Operation], version: str, server_url: str | None
) -> dict[str, Any]:
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, schemas)
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "relaycast control API",
            "version": version,
            "description": "Self-hosted live streaming: streams, keys, sessions and more.",
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key (rk_…) or a token from POST /v1/auth/token",
                }
            },
        },
        "security": [{"bearer": []}],
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc
