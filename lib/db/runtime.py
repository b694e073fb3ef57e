"""What generated repositories need at run time: codegen.runtime, re-exported.

What generated repository code needs at run time: codegen.runtime (the plugin's own,
installable with it), re-exported for Fixup's hand-written code."""

from codegen.runtime import (
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
