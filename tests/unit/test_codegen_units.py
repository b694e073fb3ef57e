"""Small pure parts of codegen and its runtime."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlc_fixup_runtime import expand_slices, status_rows

from codegen.errors import CodegenError
from codegen.naming import enum_member, enum_members, pascal, singular, snake
from codegen.nullability import target_rules
from codegen.pgcasts import cast_params, sqlc_cast
from codegen.placeholders import mysql_placeholders, pg_slices
from codegen.types_command import is_current
from codegen.types_mysql import query_args
from codegen.typeslock import LockEntry, dump, schema_hash, schema_paths, sql_hash, up_section


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


CATALOG = {
    "users": {"id": True, "name": True, "bio": False, "age": False},
    "posts": {"id": True, "user_id": True, "title": True},
}


@pytest.mark.parametrize(
    ("sql", "rules"),
    [
        (
            "SELECT id, bio, upper(name), upper(bio), age::text FROM users",
            [False, True, False, True, True],
        ),
        ("SELECT u.id, p.title FROM users u LEFT JOIN posts p ON p.user_id = u.id", [False, True]),
        ("SELECT u.id, p.title FROM posts p RIGHT JOIN users u ON p.user_id = u.id", [False, True]),
        (
            "SELECT coalesce(bio, name), greatest(age, 1), age IS NULL, concat(bio) FROM users",
            [False, False, False, False],
        ),
        (
            "SELECT nullif(id, 0), CASE WHEN age > 1 THEN 1 END, CASE WHEN true THEN 1 ELSE 2 END"
            " FROM users",
            [True, True, False],
        ),
        (
            "SELECT lag(id) OVER (), row_number() OVER (), count(*) OVER () FROM users",
            [True, False, False],
        ),
        ("WITH c AS (SELECT bio, id FROM users) SELECT c.bio, c.id FROM c", [True, False]),
        ("SELECT d.n FROM users u LEFT JOIN (SELECT count(*) AS n FROM posts) d ON true", [True]),
        ("SELECT name FROM users UNION SELECT bio FROM users", [True]),
        (
            "SELECT (SELECT count(*) FROM posts), (SELECT title FROM posts LIMIT 1) FROM users",
            [False, True],
        ),
        ("INSERT INTO users (name) VALUES ($1) RETURNING id, bio", [False, True]),
        ("SELECT name || '!', bio || '!' FROM users", [False, True]),
    ],
)
def test_postgres_nullability_with_the_catalog(sql: str, rules: list[bool | None]) -> None:
    assert target_rules("postgresql", sql, CATALOG) == rules


def test_mysql_nullability_with_the_catalog() -> None:
    sql = (
        "SELECT u.id, p.title, IFNULL(u.bio, ''), UPPER(u.bio), u.name FROM users u"
        " LEFT JOIN posts p ON p.user_id = u.id"
    )
    assert target_rules("mysql", sql, CATALOG) == [False, True, False, True, False]


def test_enum_members_are_valid_and_unique() -> None:
    assert enum_members(["+", "-", "#", "*", "a b", "A_B", "", "1x"]) == [
        "PLUS_SIGN", "HYPHEN_MINUS", "NUMBER_SIGN", "ASTERISK", "A_B", "A_B_2", "EMPTY", "_1X",
    ]  # fmt: skip


def test_pg_slices_become_any_and_all() -> None:
    sql = "SELECT 1 WHERE a IN ($1) AND b NOT IN ( $10 ) AND c in ($2)"
    assert pg_slices(sql, [1, 10, 2]) == (
        "SELECT 1 WHERE a = ANY($1) AND b <> ALL($10) AND c = ANY($2)"
    )
    with pytest.raises(CodegenError, match=r"query Q: .*write `= ANY\(@x::type\[\]\)`"):
        pg_slices("SELECT 1 WHERE a = $1", [1], "query Q")


def test_down_sections_are_cut() -> None:
    goose = "-- +goose Up\nCREATE TABLE t (a int);\n-- +goose Down\nDROP TABLE t;\n"
    assert up_section(goose) == "-- +goose Up\nCREATE TABLE t (a int);\n"
    dbmate = "-- migrate:up\nCREATE TABLE t (a int);\n-- migrate:down\nDROP TABLE t;\n"
    assert "DROP" not in up_section(dbmate)
    tern = "CREATE TABLE t (a int);\n---- create above / drop below ----\nDROP TABLE t;\n"
    assert up_section(tern) == "CREATE TABLE t (a int);\n"
    assert up_section("CREATE TABLE t (a int);\n") == "CREATE TABLE t (a int);\n"


def test_schema_paths_expand_directories(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    for name in ("0002_b.sql", "0001_a.sql", "0001_a.down.sql", "notes.txt"):
        (tmp_path / "m" / name).write_text("")
    (tmp_path / "extra.sql").write_text("")
    found = schema_paths(["m", "extra.sql"], tmp_path)
    assert [p.name for p in found] == ["0001_a.sql", "0002_b.sql", "extra.sql"]


def test_mysql_placeholder_values_keep_limit_valid() -> None:
    sql = "SELECT a FROM t WHERE b = %s AND c IN (/*SLICE:ids*/%s) LIMIT %s OFFSET %s"
    params = [{"column": {"is_sqlc_slice": s}} for s in (False, True, False, False)]
    assert query_args(sql, params) == [None, [None], 0, 0]
    assert query_args("SELECT a FROM t LIMIT %s, %s", params[:1] * 2) == [0, 0]


def test_cast_params_casts_every_occurrence_of_the_named_parameters_only() -> None:
    sql = "SELECT '$1', x FROM t -- $1\nWHERE $1 IS NULL OR y = $1 AND z = $2 AND w = $10"
    assert cast_params(sql, {1: "text", 10: "int8[]"}) == (
        "SELECT '$1', x FROM t -- $1\n"
        "WHERE $1::text IS NULL OR y = $1::text AND z = $2 AND w = $10::int8[]"
    )
    assert cast_params(sql, {}) == sql
    assert sqlc_cast("any", False) is None
    assert sqlc_cast("mood", True) == "mood[]"


def test_a_lock_is_current_for_exactly_the_queries_it_was_written_for(tmp_path: Path) -> None:
    schema = tmp_path / "schema.sql"
    schema.write_text("CREATE TABLE t (id int);")
    request = {
        "settings": {"schema": ["schema.sql"]},
        "queries": [{"name": "GetT", "text": "SELECT id FROM t WHERE id = $1"}],
    }
    lock = tmp_path / "types.lock.json"

    def write(**texts: str) -> None:
        entries = {
            name: LockEntry(sql_hash(text), ["int4"], ["int4"]) for name, text in texts.items()
        }
        lock.write_text(dump(schema_hash([schema.resolve()]), entries))

    write(GetT="SELECT id FROM t WHERE id = $1")
    assert is_current(request, tmp_path, lock)
    write(GetT="SELECT id FROM t WHERE id = $1", Gone="SELECT 1")  # a query since removed
    assert not is_current(request, tmp_path, lock)
    write(GetT="SELECT id FROM t")  # the query changed
    assert not is_current(request, tmp_path, lock)
    write()  # a query since added
    assert not is_current(request, tmp_path, lock)
