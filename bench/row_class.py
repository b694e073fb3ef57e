"""Row class choice for generated code: build 50 rows + orjson-encode them, per variant.

Prints microseconds per 50 rows and each variant's ratio to the plain dataclass (ADR 0003).
Run: .venv/bin/python bench/row_class.py
"""

from __future__ import annotations

import datetime
import decimal
import timeit
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

FIELDS = ["id", "name", "address", "version", "created_at", "updated_at", "salary"]
NOW = datetime.datetime.now(datetime.UTC)
RECORDS = [
    (uuid.uuid4(), "n" * 10, "a" * 20, 1, NOW, NOW, decimal.Decimal("1.50")) for _ in range(50)
]


def default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    raise TypeError


def make(**options: bool) -> type:
    @dataclass(**options)
    class Row:
        id: uuid.UUID
        name: str
        address: str
        version: int
        created_at: datetime.datetime
        updated_at: datetime.datetime
        salary: decimal.Decimal | None

    return Row


def best(func: Any) -> float:
    return min(timeit.repeat(func, number=2000, repeat=5)) / 2000 * 1e6


def main() -> None:
    results = {}
    variants: dict[str, Any] = {
        "dataclass": make(),
        "dataclass(slots)": make(slots=True),
        "dataclass(frozen)": make(frozen=True),
        "dataclass(frozen, slots)": make(frozen=True, slots=True),
    }
    for label, cls in variants.items():
        rows = [cls(*r) for r in RECORDS]
        build = best(lambda cls=cls: [cls(*r) for r in RECORDS])
        encode = best(lambda rows=rows: orjson.dumps(rows, default=default))
        results[label] = (build, encode)
    dicts = [dict(zip(FIELDS, r, strict=True)) for r in RECORDS]
    results["dict"] = (
        best(lambda: [dict(zip(FIELDS, r, strict=True)) for r in RECORDS]),
        best(lambda: orjson.dumps(dicts, default=default)),
    )
    base = sum(results["dataclass"])
    print(f"{'50 rows':26} {'build µs':>9} {'encode µs':>10} {'total µs':>9} {'ratio':>6}")
    for label, (build, encode) in results.items():
        total = build + encode
        print(f"{label:26} {build:9.1f} {encode:10.1f} {total:9.1f} {total / base:6.2f}")


if __name__ == "__main__":
    main()
