"""Small pure parts of codegen and its runtime."""

from __future__ import annotations

import pytest

from codegen.naming import enum_member, pascal, snake
from codegen.nullability import target_rules
from codegen.plan import mysql_placeholders, singular
from lib.db.runtime import expand_slices, status_rows


@pytest.mark.parametrize(
    ("sql", "rules"),
    [
        (
            "SELECT count(*), min(a), max(a), avg(a), sum(a), a FROM t",
            [False, True, True, True, True, None],
        ),
        ("SELECT coalesce(max(a), 0), coalesce(max(a), min(a)) FROM t", [False, True]),
        ("SELECT avg(a)::numeric(10,2), (SELECT 1) FROM t", [True, True]),
        ("INSERT INTO t (a) VALUES ($1) RETURNING id, now()", [None, False]),
        ("UPDATE t SET a = max_fn(1) RETURNING id", [None]),
        (
            "SELECT round(avg(a), 2), round(a, 2), max(a) + 1, lower(b) FROM t",
            [True, None, True, None],
        ),
    ],
)
def test_postgres_nullability_rules(sql: str, rules: list[bool | None]) -> None:
    assert target_rules("postgresql", sql) == rules


def test_mysql_nullability_rules() -> None:
    sql = (
        "SELECT COUNT(*), MIN(a), AVG(a), COALESCE(SUM(a), 0), a, 'x', ROUND(AVG(a), 2), a + 1"
        " FROM t"
    )
    assert target_rules("mysql", sql) == [False, True, True, False, None, False, True, None]


def test_unparsable_sql_gives_no_opinion() -> None:
    assert target_rules("postgresql", "SELEC nothing") is None


def test_mysql_placeholders_keep_quotes_and_comments() -> None:
    sql = "SELECT '?', `a?`, \"%\" FROM t WHERE a = ? AND b LIKE '100%' AND c IN (/*SLICE:ids*/?)"
    assert mysql_placeholders(sql) == (
        "SELECT '?', `a?`, \"%%\" FROM t WHERE a = %s AND b LIKE '100%%' AND c IN (/*SLICE:ids*/%s)"
    )


def test_expand_slices() -> None:
    sql = "SELECT 1 WHERE a = %s AND b IN (/*SLICE:ids*/%s) AND c LIKE '5%%'"
    assert expand_slices(sql, (1, [7, 8, 9])) == (
        "SELECT 1 WHERE a = %s AND b IN (%s, %s, %s) AND c LIKE '5%%'",
        [1, 7, 8, 9],
    )
    assert expand_slices(sql, (1, [])) == (
        "SELECT 1 WHERE a = %s AND b IN (NULL) AND c LIKE '5%%'",
        [1],
    )


def test_status_rows() -> None:
    assert status_rows("UPDATE 3") == 3
    assert status_rows("INSERT 0 12") == 12
    assert status_rows("COPY 10000") == 10000
    assert status_rows("CREATE TABLE") == 0


def test_names() -> None:
    assert snake("ListDepartmentsByNameAsc") == "list_departments_by_name_asc"
    assert snake("class") == "class_"
    assert snake("row") == "row_"
    assert pascal("user_points") == "UserPoints"
    assert singular("categories") == "category"
    assert singular("statuses") == "status"
    assert singular("address") == "address"
    assert enum_member("so-so") == "SO_SO"
    assert enum_member("1st") == "_1ST"
