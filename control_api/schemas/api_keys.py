"""API keys and tokens."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from control_api.schemas.common import ApiModel, RequestModel, Timestamp

Access = Literal["full", "restricted"]
Origin = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=255, pattern=r"^(\*|[Hh][Tt][Tt][Pp][Ss]?://[^/\s]+)$"
    ),
]


def check_origin(origin: str) -> str:
    """An origin is ``scheme://host[:port]`` (or ``*``): no path, so it can be compared exactly."""
    if origin == "*":
        return origin
    scheme, sep, rest = origin.lower().partition("://")
    if not sep or scheme not in ("http", "https") or not rest or any(c in rest for c in "/ \t\n"):
        raise ValueError(f"{origin!r} is not an origin like https://example.com")
    return origin.lower()


class ApiKeyCreate(RequestModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    access: Access = "full"
    cors_origins: list[Origin] = Field(default_factory=list, max_length=50)

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        return [check_origin(o) for o in value]


class ApiKeyOut(ApiModel):
    key_id: str
    name: str
    access: Access
    cors_origins: list[str]
    prefix: str
    created_at: Timestamp
    last_used_at: Timestamp | None = None
    key: str | None = Field(None, description="The secret; only in the create response.")


class ApiKeyList(ApiModel):
    api_keys: list[ApiKeyOut]
    total: int


class TokenRequest(RequestModel):
    api_key: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class TokenOut(ApiModel):
    authorization_token: str
    expires_in: int
