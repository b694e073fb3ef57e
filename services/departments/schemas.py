"""The departments API's input models (output is the generated Department row)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

from lib.http.listing import ListQuery

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Address = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

ORDERBY = ("name", "address", "created_at")
READ_ONLY = frozenset({"id", "version", "created_at", "updated_at"})


class DepartmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    address: Address


class DepartmentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    address: Address | None = None

    @model_validator(mode="after")
    def _something(self) -> DepartmentUpdate:
        if self.name is None and self.address is None:
            raise ValueError("give at least one of: name, address")
        return self


class DepartmentListQuery(ListQuery):
    """limit, page, orderby (name | address | created_at; default name), sort."""
