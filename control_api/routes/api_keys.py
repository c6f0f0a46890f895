"""API keys of the caller's environment."""

from __future__ import annotations

from control_api.appkeys import ORIGINS, STORE
from control_api.presenters.api_keys import key_out
from control_api.problems import not_found
from control_api.router import Call
from control_api.routes import api
from control_api.schemas.api_keys import ApiKeyCreate, ApiKeyList, ApiKeyOut


@api.route("GET", "/v1/api-keys", summary="List API keys", tag="api-keys", response=ApiKeyList)
async def list_api_keys(call: Call[None, None]) -> ApiKeyList:
    rows = await call.request.app[STORE].api_keys.list(call.env)
    return ApiKeyList(api_keys=[key_out(r) for r in rows], total=len(rows))


@api.route(
    "POST",
    "/v1/api-keys",
    summary="Create an API key (the secret is shown once)",
    tag="api-keys",
    body=ApiKeyCreate,
    response=ApiKeyOut,
    status=201,
)
async def create_api_key(call: Call[ApiKeyCreate, None]) -> ApiKeyOut:
    body = call.body
    row, secret = await call.request.app[STORE].api_keys.create(
        call.env, body.name, body.access, body.cors_origins
    )
    call.request.app[ORIGINS].invalidate()
    return key_out(row, secret)


@api.route(
    "DELETE",
    "/v1/api-keys/{keyId}",
    summary="Revoke an API key",
    tag="api-keys",
    status=204,
    errors=(404,),
)
async def revoke_api_key(call: Call[None, None]) -> None:
    key_id = call.path("keyId")
    if not await call.request.app[STORE].api_keys.revoke(key_id, call.env):
        raise not_found("API key", key_id)
    call.request.app[ORIGINS].invalidate()
