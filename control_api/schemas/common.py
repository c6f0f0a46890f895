"""Base models and shapes shared by every resource."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator
from pydantic.alias_generators import to_camel


def _iso_utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Timestamp = Annotated[
    datetime,
    PlainSerializer(_iso_utc, return_type=str, when_used="json"),
    Field(json_schema_extra={"format": "date-time"}),
]


def _integral(value: Any) -> Any:
    """JSON Schema counts 628.0 as an integer; strict pydantic would not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


IntegralFloat = BeforeValidator(_integral)
"""Put after the Field constraints in an Annotated int, so the schema still shows them."""


class ApiModel(BaseModel):
    """Response side: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class RequestModel(BaseModel):
    """Request side: camelCase only, unknown fields are an error, nulls must be meant."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        extra="forbid",
        strict=True,  # JSON has types: false is not 0 and "5" is not 5
    )

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        """Optional means "may be left out", not "may be null": a null is almost always a bug."""
        if isinstance(data, dict):
            for key, value in data.items():
                if value is None:
                    raise ValueError(f"{key} must not be null")
        return data


class QueryModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, validate_by_alias=True, extra="ignore")


class PageQuery(QueryModel):
    limit: int = Field(20, ge=1, le=100, description="Items per page (at most 100).")
    offset: int = Field(0, ge=0, le=2**31, description="Items to skip.")


class ProblemDetail(ApiModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = None
