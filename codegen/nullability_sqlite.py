"""SQLite's own nullability of functions and operators, for codegen/nullability_mysql.py's
walker read as `dialect="sqlite"`. SQLite is not PostgreSQL: many of its functions return
NULL on a bad input whose every argument is set (sqlite.org/lang_corefunc.html,
lang_mathfunc.html, lang_datefunc.html, json1.html), and arithmetic whose result is NaN
(Inf - Inf, Inf * 0, which any column of a table that is not STRICT can hold) is NULL.
Each rule is listed in codegen/README.md ("SQLite nullability")."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlglot import expressions as exp

from .nullability_rules import Rule, any_true

# Never NULL, whatever the arguments (typeof(NULL) is 'null', quote(NULL) is 'NULL',
# json_array(NULL) '[null]', hex(NULL) and zeroblob(NULL) empty, concat() skips NULLs).
NEVER_NULL = {
    "COUNT", "RANDOM", "RANDOMBLOB", "CHANGES", "TOTAL_CHANGES", "LAST_INSERT_ROWID",
    "SQLITE_VERSION", "SQLITE_SOURCE_ID", "TYPEOF", "QUOTE", "HEX", "ZEROBLOB", "CONCAT",
    "JSON_ARRAY", "JSON_OBJECT", "JSON_QUOTE", "JSON_GROUP_ARRAY", "JSON_GROUP_OBJECT",
    "ROW_NUMBER", "RANK", "DENSE_RANK", "PERCENT_RANK", "CUME_DIST", "NTILE",
    "CURRENT_TIMESTAMP", "CURRENT_DATE", "CURRENT_TIME", "PI",
}  # fmt: skip
# NULL exactly when an argument is NULL: no bad input makes them NULL (abs('x') is 0.0,
# substr past the end '', a bad JSON text an error, not NULL).
STRICT = {
    "ABS", "LOWER", "UPPER", "LENGTH", "OCTET_LENGTH", "TRIM", "LTRIM", "RTRIM", "REPLACE",
    "SUBSTR", "SUBSTRING", "INSTR", "ROUND", "SOUNDEX", "LIKELY", "UNLIKELY", "LIKELIHOOD",
    "CHAR", "GLOB", "LIKE", "MIN", "MAX", "JSON", "JSONB", "JSON_VALID", "JSON_INSERT",
    "JSON_REPLACE", "JSON_SET", "JSON_REMOVE", "JSON_PATCH",
}  # fmt: skip
# NULL on a bad input though every argument is set: the math functions on text or out of
# their domain (sqrt(-1), ln(0)), the date functions on a non-date, a JSON path that is
# missing, unicode(''), unhex('x'); and the aggregates over no row (outside a group).
MAY_BE_NULL = {
    "ACOS", "ACOSH", "ASIN", "ASINH", "ATAN", "ATAN2", "ATANH", "CEIL", "CEILING", "COS",
    "COSH", "DEGREES", "EXP", "FLOOR", "LN", "LOG", "LOG10", "LOG2", "MOD", "POW", "POWER",
    "RADIANS", "SIN", "SINH", "SQRT", "TAN", "TANH", "TRUNC", "SIGN",
    "DATE", "TIME", "DATETIME", "JULIANDAY", "UNIXEPOCH", "STRFTIME", "TIMEDIFF",
    "JSON_EXTRACT", "JSONB_EXTRACT", "JSON_TYPE", "JSON_ARRAY_LENGTH", "JSON_ERROR_POSITION",
    "UNICODE", "UNHEX", "NULLIF", "LAG", "LEAD", "FIRST_VALUE", "LAST_VALUE", "NTH_VALUE",
    "SUM", "AVG", "TOTAL", "GROUP_CONCAT", "STRING_AGG", "HIGHLIGHT", "SNIPPET",
}  # fmt: skip
# In a GROUP BY group there is a row: min, max and group_concat of a NOT NULL argument are
# set; sum, avg and total are not (Inf + -Inf is NaN, which SQLite returns as NULL).
SET_IN_GROUP = {"MIN", "MAX", "GROUP_CONCAT", "STRING_AGG"}
_NAME = re.compile(r"^([A-Za-z_]+)\(")


def function_name(node: exp.Expression) -> str:
    """The name SQLite calls, as sqlglot writes the call back in SQLite's dialect."""
    if isinstance(node, exp.Anonymous):
        return str(node.name).upper()
    found = _NAME.match(node.sql("sqlite"))
    return found.group(1).upper() if found else ""


def number(node: exp.Expression | None) -> float | None:
    """A numeric literal's value (`-2` too), None for anything else."""
    sign = 1.0
    if isinstance(node, exp.Neg):
        sign, node = -1.0, node.this
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            return sign * float(node.this)
        except ValueError:
            return None
    return None


def _arithmetic(node: exp.Binary, sides: list[Rule]) -> Rule:
    """`/` and `%` are NULL by a zero divisor, `+ - *` by a NaN (Inf - Inf, Inf * 0): set
    only beside a literal that rules it out."""
    right, left = number(node.expression), number(node.this)
    if isinstance(node, exp.Div):
        safe = right is not None and right != 0
    elif isinstance(node, exp.Mod):  # `%` works on integers: 5 % 0.5 divides by 0
        safe = right is not None and abs(int(right)) >= 1
    elif isinstance(node, exp.Mul):
        safe = any(n is not None and n != 0 for n in (left, right))
    else:
        safe = left is not None or right is not None
    return any_true(sides) if safe else True


ARITHMETIC = (exp.Div, exp.Mod, exp.Add, exp.Sub, exp.Mul)
# the shared walker's rules hold for these: COALESCE, NULLIF, CASE, IIF, CAST (CAST never
# makes NULL of a value in SQLite), comparisons, LIKE, `||`, IS, EXISTS
SHARED = (exp.Coalesce, exp.Nullif, exp.Case, exp.If, exp.Cast, exp.Binary, exp.Exists)


def sqlite_decides(node: exp.Expression) -> bool:
    """Whether SQLite's own rule below decides `node`."""
    if isinstance(node, (*ARITHMETIC, exp.JSONExtract, exp.JSONExtractScalar, exp.Window)):
        return True
    return isinstance(node, exp.Func) and not isinstance(node, SHARED)


def sqlite_expr(
    node: exp.Expression, walk: Callable[[exp.Expression], Rule], grouped: bool
) -> Rule:
    """SQLite's rule for a function or operator; None for a function it does not know
    (the plan types it Optional and says so)."""
    if isinstance(node, ARITHMETIC):
        return _arithmetic(node, [walk(node.this), walk(node.expression)])
    if isinstance(node, exp.JSONExtract | exp.JSONExtractScalar):  # `->`, `->>`: a miss
        return True
    if isinstance(node, exp.Window):  # the ranking functions are set; a frame may be empty
        return function_name(node.this) not in NEVER_NULL
    name = function_name(node)
    args = [walk(a) for a in node.iter_expressions() if not isinstance(a, exp.Order)]
    if name in ("MIN", "MAX") and len(args) > 1:  # the scalar forms: NULL if one is
        return any_true(args)
    if grouped and name in SET_IN_GROUP:
        return any_true(args[:1])
    if name in NEVER_NULL:
        return False
    if name in MAY_BE_NULL:
        return True
    if name in STRICT:
        return any_true(args)
    if name in ("PRINTF", "FORMAT", "CONCAT_WS"):  # NULL arguments print as ''; not the first
        return args[0] if args else None
    return None
