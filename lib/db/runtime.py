"""What generated repositories need at run time: sqlc_fixup_runtime, re-exported."""

from sqlc_fixup_runtime import (
    JSON,
    ExecResult,
    MyConn,
    PgConn,
    Sorting,
    SortKey,
    expand_slices,
    json_dumps,
    json_loads,
    mysql_set,
    naive_utc,
    status_rows,
    utc,
)

__all__ = [
    "JSON",
    "ExecResult",
    "MyConn",
    "PgConn",
    "SortKey",
    "Sorting",
    "expand_slices",
    "json_dumps",
    "json_loads",
    "mysql_set",
    "naive_utc",
    "status_rows",
    "utc",
]
