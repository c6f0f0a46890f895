"""Short-lived tokens minted from an API key."""

from __future__ import annotations

from control_api.appkeys import SETTINGS, SIGNING_KEY, STORE
from control_api.credentials import mint_token
from control_api.problems import Problem
from control_api.router import Call
from control_api.routes import api
from control_api.schemas.api_keys import TokenOut, TokenRequest


@api.route(
    "POST",
    "/v1/auth/token",
    summary="Exchange an API key for a short-lived token",
    tag="auth",
    body=TokenRequest,
    response=TokenOut,
    auth=False,
    errors=(401,),
    description="The token acts as the key until it expires and dies with the key.",
)
async def create_token(call: Call[TokenRequest, None]) -> TokenOut:
    app = call.request.app
    key = await app[STORE].api_keys.by_secret(call.body.api_key)
    if key is None:
        raise Problem(401, "the API key is invalid or revoked", slug="unauthorized")
    ttl = app[SETTINGS].api.token_ttl_seconds
    return TokenOut(authorization_token=mint_token(app[SIGNING_KEY], key.id, ttl), expires_in=ttl)
