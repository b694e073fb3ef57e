"""The departments API's input models (output is the generated Department row)."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from lib.http.fields import omit_default, single_line
from lib.http.listing import ListQuery

Name = Annotated[str, single_line(100)]
Address = Annotated[str, single_line(200)]

DepartmentOrderBy = Literal["name", "address", "created_at"]
ORDERBY: tuple[str, ...] = get_args(DepartmentOrderBy)  # the first is the default
READ_ONLY = frozenset({"id", "version", "created_at", "updated_at"})


class DepartmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    address: Address


class DepartmentUpdate(BaseModel):
    """Only the fields given change; null is not a value (SkipJsonSchema keeps it out of
    the document, the validator refuses it)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    name: Name | SkipJsonSchema[None] = Field(None, json_schema_extra=omit_default)
    address: Address | SkipJsonSchema[None] = Field(None, json_schema_extra=omit_default)

    @model_validator(mode="after")
    def _something(self) -> DepartmentUpdate:
        if self.name is None and self.address is None:
            raise ValueError("give at least one of: name, address")
        return self


class DepartmentListQuery(ListQuery):
    """limit, page, orderby (name | address | created_at; default name), sort."""

    orderby: DepartmentOrderBy | None = Field(None, description="Sort key; default name.")
