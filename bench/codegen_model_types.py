"""What each `model_type` costs per row on the read path: a driver row (a tuple, as asyncpg's
Record and psycopg's tuples index) built into the row class the way the generated code
builds it — dataclass, msgspec and attrs positionally (`Row(*row)`), pydantic by name with
its validation — and, for reference, pydantic's `model_construct`, which skips validation
but costs more (pure Python), so the generated code does not use it. Seven columns, 1000
rows per round.

Prints nanoseconds per row and each one's ratio to the dataclass, side by side.
Run: .venv/bin/python bench/codegen_model_types.py
"""

from __future__ import annotations

import datetime
import decimal
import timeit
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import attrs
import msgspec
import pydantic

NOW = datetime.datetime.now(datetime.UTC)
RECORDS = [
    (uuid.uuid4(), "n" * 10, "a" * 20, 1, NOW, NOW, decimal.Decimal("1.50")) for _ in range(1000)
]


@dataclass
class DataclassRow:
    id: uuid.UUID
    name: str
    address: str
    version: int
    created_at: datetime.datetime
    updated_at: datetime.datetime
    salary: decimal.Decimal | None


class MsgspecRow(msgspec.Struct):
    id: uuid.UUID
    name: str
    address: str
    version: int
    created_at: datetime.datetime
    updated_at: datetime.datetime
    salary: decimal.Decimal | None


@attrs.define
class AttrsRow:
    id: uuid.UUID
    name: str
    address: str
    version: int
    created_at: datetime.datetime
    updated_at: datetime.datetime
    salary: decimal.Decimal | None


class PydanticRow(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(arbitrary_types_allowed=True)  # as pydantic_rows

    id: uuid.UUID
    name: str
    address: str
    version: int
    created_at: datetime.datetime
    updated_at: datetime.datetime
    salary: decimal.Decimal | None


def construct(r: Any) -> PydanticRow:
    """For reference only: no validation, yet slower (not generated)."""
    return PydanticRow.model_construct(
        id=r[0], name=r[1], address=r[2], version=r[3], created_at=r[4], updated_at=r[5],
        salary=r[6],
    )  # fmt: skip


def validate(r: Any) -> PydanticRow:
    """What generated code writes for pydantic: fields by name, validated."""
    return PydanticRow(
        id=r[0], name=r[1], address=r[2], version=r[3], created_at=r[4], updated_at=r[5],
        salary=r[6],
    )  # fmt: skip


BUILDERS: dict[str, Callable[[Any], Any]] = {
    "dataclass": lambda r: DataclassRow(*r),
    "msgspec": lambda r: MsgspecRow(*r),
    "attrs": lambda r: AttrsRow(*r),
    "pydantic": validate,
    "pydantic model_construct (not used)": construct,
}


def per_row_ns(build: Callable[[Any], Any], rounds: int = 5) -> float:
    def batch() -> None:
        for r in RECORDS:
            build(r)

    return min(timeit.repeat(batch, number=20, repeat=rounds)) / 20 / len(RECORDS) * 1e9


def main() -> None:
    results = {label: per_row_ns(build) for label, build in BUILDERS.items()}
    base = results["dataclass"]
    print(f"{'model_type (7 columns)':36} {'ns/row':>8} {'vs dataclass':>13}")
    for label, ns in results.items():
        print(f"{label:36} {ns:8.0f} {ns / base:12.2f}x")


if __name__ == "__main__":
    main()
