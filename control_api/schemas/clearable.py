"""Request models where a few fields may be set to null on purpose.

``RequestModel`` refuses nulls because they are usually bugs. Moving something to the
root ("no folder") is the exception: there ``null`` is the natural value, so those
models name the fields that accept it and keep refusing nulls everywhere else.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import model_validator

from control_api.schemas.common import RequestModel


class ClearableRequest(RequestModel):
    clearable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, value in data.items():
                if value is None and key not in cls.clearable:
                    raise ValueError(f"{key} must not be null")
        return data
