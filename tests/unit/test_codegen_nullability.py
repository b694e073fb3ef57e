# ruff: noqa: E501  (a table: one SQL statement and its rules a line)
"""codegen/nullability without a server: one rule per result column (True may be NULL,
False never, None no opinion) for each construct the rules know, on PostgreSQL (pglast)
and MySQL (sqlglot), against a small catalog: a(id, name NOT NULL; note nullable),
b(id, a_id NOT NULL; val nullable), s.t(x NOT NULL). Each expectation was checked by hand
against the SQL semantics the module's docstring states."""

from __future__ import annotations

import pytest

from codegen.nullability import Catalog, Relation, Rule, Scope, target_rules
from codegen.nullability_mysql import mysql_rules
from codegen.one_row import one_row

# what `make test svc=` selects it for (tests/selection.py):
# codegen only: "catalog" is the analyser's word for the tables it knows
EXERCISES = ()

CATALOG: Catalog = {
    "a": {"id": True, "name": True, "note": False},
    "b": {"id": True, "a_id": True, "val": False},
    "s.t": {"x": True},
}
MYSQL_CATALOG: Catalog = {"a": CATALOG["a"], "b": CATALOG["b"], "t": {"x": True}}

POSTGRES: list[tuple[str, list[Rule] | None]] = [
    ("SELECT id, note FROM a", [False, True]),
    ("SELECT a.id, b.val FROM a JOIN b ON b.a_id = a.id", [False, True]),
    ("SELECT a.id, b.id FROM a LEFT JOIN b ON b.a_id = a.id", [False, True]),
    ("SELECT a.id, b.id FROM a RIGHT JOIN b ON b.a_id = a.id", [True, False]),
    ("SELECT a.id, b.id FROM a FULL JOIN b ON b.a_id = a.id", [True, True]),
    ("SELECT x.id FROM a x", [False]),
    ("SELECT t.x FROM s.t", [False]),
    ("SELECT t.x FROM public.t", [None]),
    ("SELECT a.id FROM public.a", [False]),
    ("SELECT id FROM nosuch", [None]),
    ("SELECT name FROM a, b", [False]),
    ("SELECT val FROM a, b", [True]),
    (
        "SELECT count(*), min(id), sum(id), now(), nullif(id, 1), lower(name), lower(note), upper('x') FROM a",
        [False, True, True, False, True, False, True, False],
    ),
    ("SELECT concat_ws(',', note), concat_ws(note, name), concat_ws() FROM a", [False, True, None]),
    (
        "SELECT row_number() OVER (), lag(id) OVER (), abs(id) OVER (), abs(note) OVER () FROM a",
        [False, True, False, True],
    ),
    ("SELECT random(), f() FROM a", [False, None]),
    ('SELECT id::text, note::text, name COLLATE "C" FROM a', [False, True, False]),
    (
        "SELECT coalesce(note, name), coalesce(note, note), greatest(id, note), coalesce(note, f()) FROM a",
        [False, True, False, None],
    ),
    (
        "SELECT note IS NULL, note IS TRUE, current_date, ARRAY[1], ROW(1, 2), (ARRAY[id])[1] FROM a",
        [False, False, False, False, False, True],
    ),
    (
        "SELECT CASE WHEN id = 1 THEN name END, CASE WHEN id = 1 THEN name ELSE name END, CASE WHEN id = 1 THEN note ELSE name END FROM a",
        [True, False, True],
    ),
    (
        "SELECT EXISTS (SELECT 1 FROM b), ARRAY(SELECT id FROM b), (SELECT id FROM b LIMIT 1) FROM a",
        [False, False, True],
    ),
    (
        "SELECT (SELECT count(*) FROM b), (SELECT max(id) FROM b), (SELECT count(*) FROM b GROUP BY id), (SELECT count(*) OVER () FROM b), (SELECT lower(name) FROM b) FROM a",
        [False, True, True, True, True],
    ),
    (
        "SELECT (SELECT count(*) FROM b HAVING count(*) > 1), (SELECT count(*) FROM b LIMIT 1), (SELECT count(*) FROM b OFFSET 1), (SELECT count(*), 1 FROM b), (SELECT count(*) FROM b UNION SELECT 1) FROM a",
        [True, True, True, True, True],
    ),
    (
        "SELECT id IN (SELECT a_id FROM b), note IN (SELECT a_id FROM b), id = ANY(SELECT a_id FROM b) FROM a",
        [False, True, False],  # both sides NOT NULL: never NULL
    ),
    ("SELECT id = 1 AND name = 'x', note = 1 OR id = 2, NOT id = 1 FROM a", [False, True, False]),
    ("SELECT id + 1, note + 1, id + f(), -id FROM a", [False, True, None, False]),
    (
        "SELECT nullif(id, 2), id IS DISTINCT FROM note, id IS NOT DISTINCT FROM note FROM a",
        [True, False, False],
    ),
    (
        "SELECT note -> 'k', name ->> 'k', id #> '{a}', id #>> '{a}', name || 'x' FROM a",
        [True, True, True, True, False],
    ),
    (
        "SELECT id = ANY(ARRAY[1, 2]), note = ANY(ARRAY[1]), id IN (1, 2), id IN (1, NULL), note IN (1), id = ALL(ARRAY[1]) FROM a",
        [None, True, None, True, True, None],
    ),
    ("SELECT NULL, 1, 'x' FROM a", [True, False, False]),
    ("SELECT id FROM a UNION SELECT note FROM a", [True]),
    ("SELECT id FROM a UNION ALL SELECT id FROM a", [False]),
    ("SELECT id FROM a EXCEPT SELECT note FROM a", [False]),
    ("SELECT id FROM a INTERSECT SELECT note FROM a", [True]),
    ("SELECT id FROM a EXCEPT SELECT 1 FROM (INSERT INTO b (id) VALUES (1)) x", None),
    ("VALUES (1, NULL), (2, 3)", [False, True]),
    ("VALUES (1, 2), (NULL, 3)", [True, False]),
    ("WITH c AS (SELECT id, note FROM a) SELECT id, note FROM c", [False, True]),
    ("WITH c (i, n) AS (SELECT id, note FROM a) SELECT i, n FROM c", [False, True]),
    (
        "WITH c AS (SELECT id AS k, lower(note), note::text, 1 FROM a) SELECT k, lower, note FROM c",
        [False, True, True],
    ),
    (
        "WITH c AS (SELECT id FROM a) SELECT c.id, d.id FROM a LEFT JOIN c d ON true CROSS JOIN c",
        [False, True],
    ),
    ("SELECT d.k, d.n FROM (SELECT id AS k, note AS n FROM a) d", [False, True]),
    ("SELECT d.p, d.q FROM (SELECT id, note FROM a) d (p, q)", [False, True]),
    ("SELECT d.k FROM a LEFT JOIN (SELECT id AS k FROM b) d ON true", [True]),
    ("SELECT d.id FROM (SELECT id FROM a UNION SELECT id FROM b) d", [False]),
    ("SELECT x.count FROM (SELECT count(*) FROM a) x", [False]),
    ("SELECT y.* FROM a y", [None]),
    ("SELECT (SELECT a.id FROM b LIMIT 1) FROM a", [True]),
    ("SELECT (SELECT x.id FROM b) FROM a x", [True]),
    ("SELECT id FROM a WHERE id IN (SELECT id FROM a o WHERE o.id = a.id)", [False]),
    ("INSERT INTO a (id, name) VALUES (1, 'x') RETURNING id, note", [False, True]),
    ("INSERT INTO a AS z (id) VALUES (1) RETURNING z.note, z.id", [True, False]),
    ("UPDATE a SET name = 'x' FROM b WHERE b.a_id = a.id RETURNING a.id, b.val", [False, True]),
    ("DELETE FROM a USING b WHERE b.a_id = a.id RETURNING b.id, a.note", [False, True]),
    ("WITH c AS (SELECT id FROM b) UPDATE a SET name = 'x' FROM c RETURNING c.id", [False]),
    (
        "WITH c AS (INSERT INTO b (id) VALUES (1) RETURNING id, val) SELECT id, val FROM c",
        [False, True],
    ),
    ("WITH c AS (UPDATE b SET val = 1 RETURNING id, val) SELECT * FROM c", [None]),
    ("INSERT INTO a (id) VALUES (1)", None),
    ("SELECT lower(x) FROM a", [None]),
    ("SELECT a.id FROM a LEFT JOIN b ON true LEFT JOIN b c ON true", [False]),
    ("SELECT b.id, c.id FROM (a LEFT JOIN b ON true) JOIN b c ON true", [True, False]),
    ("SELECT b.id, c.id FROM b c RIGHT JOIN (a JOIN b ON true) ON true", [False, True]),
    ("SELECT x.id FROM a LEFT JOIN (b JOIN b x ON true) ON true", [True]),
    ("SELECT id FROM a WHERE (SELECT 1) = 1", [False]),
    (
        "SELECT array_length(ARRAY[1], 1), substring(name, 1, 2), count(note) FROM a",
        [True, True, False],
    ),
    # names and lengths: a column list shorter than the query, set operations of unequal
    # width, VALUES rows of unequal width, a CTE without RETURNING, unnamed targets, a
    # VALUES derived table without a column list (no names, and no RETURNING to ask)
    ("SELECT d.p FROM (SELECT id, note FROM a) d (p)", [False]),
    ("SELECT note FROM a UNION SELECT id FROM a", [True]),
    ("SELECT id, note FROM a UNION SELECT id FROM a", [False]),
    ("VALUES (1, 2), (3)", [False]),
    ("SELECT 1 FROM (VALUES (1)) v", [False]),
    ("SELECT v.x FROM a, LATERAL (VALUES (a.note)) v (x)", [True]),
    ("SELECT g() OVER () FROM a", [None]),
    ("WITH c AS (INSERT INTO b (id) VALUES (1)) SELECT 1 FROM c", [False]),
    ('WITH c AS (SELECT 1::int) SELECT "?column?" FROM c', [False]),
    ('WITH c AS (SELECT 1, a.* FROM a) SELECT "?column?" FROM c', [None]),
    ('WITH c AS (SELECT 1) SELECT "?column?" FROM c', [False]),
    # WHERE c IS NOT NULL, AND-ed, narrows c (an outer join's side too); OR, IS NULL, an
    # expression, an unknown column or qualifier, a subquery's own WHERE narrow nothing
    ("SELECT note FROM a WHERE note IS NOT NULL", [False]),
    ("SELECT note, a.note FROM a WHERE a.note IS NOT NULL AND id > 1", [False, False]),
    ("SELECT note FROM a WHERE note IS NOT NULL OR id > 1", [True]),
    ("SELECT note FROM a WHERE note IS NULL", [True]),
    ("SELECT note FROM a WHERE lower(note) IS NOT NULL", [True]),
    ("SELECT note FROM a WHERE nosuch IS NOT NULL", [True]),
    ("SELECT note FROM a WHERE x.note IS NOT NULL", [True]),
    ("SELECT note FROM a WHERE a.* IS NOT NULL", [True]),
    ("SELECT note FROM a WHERE (SELECT 1 FROM b WHERE note IS NOT NULL) = 1", [True]),
    (
        "SELECT b.val, a.note FROM a LEFT JOIN b ON b.a_id = a.id WHERE b.val IS NOT NULL AND (a.note IS NOT NULL)",
        [False, False],
    ),
    # in a GROUP BY group there is a row: min/max/sum/avg/string_agg are as NULL as their
    # argument, array_agg/json_agg never; not with FILTER, without GROUP BY, with a grand
    # total (GROUPING SETS with ()), or as a window function
    (
        "SELECT min(id), max(note), sum(id), avg(id), string_agg(name, ','), string_agg(note, ','), array_agg(note), json_agg(id), count(note), min(id) FILTER (WHERE id > 1), bool_and(id > 1) FROM a GROUP BY name",
        [False, True, False, False, False, True, False, False, False, True, False],
    ),
    ("SELECT min(id), array_agg(id) FROM a", [True, True]),
    # string_agg: a NULL delimiter is skipped, only the value counts
    (
        "SELECT string_agg(name, note), string_agg(note, name) FROM a GROUP BY id",
        [False, True],
    ),
    # calls PostgreSQL would refuse (no argument) still get a rule, never an error
    ("SELECT max(), format(), id FROM a GROUP BY id", [True, None, False]),
    ("SELECT min(id), array_agg(id) FROM a GROUP BY GROUPING SETS ((name), ())", [True, True]),
    ("SELECT min(id) OVER (), array_agg(id) OVER () FROM a GROUP BY id", [True, True]),
    # first_value/last_value over the default frame (it holds the current row); a frame
    # that may be empty or a named window: may be NULL
    (
        "SELECT first_value(id) OVER (ORDER BY id), first_value(note) OVER (ORDER BY id), last_value(id) OVER (), first_value(id) OVER (ROWS BETWEEN 1 PRECEDING AND 1 PRECEDING), first_value(id) OVER w, nth_value(id, 1) OVER () FROM a WINDOW w AS (ORDER BY id)",
        [False, True, False, True, True, True],
    ),
    # lead/lag with a default: NULL when the value or the default may be
    (
        "SELECT lag(id, 1, 0) OVER (), lag(id, 1, note) OVER (), lag(note, 1, 0) OVER (), lag(id, 1) OVER (), lead(id, 1, 0) OVER () FROM a",
        [False, True, True, True, False],
    ),
    # format() formats a NULL argument as ''; only a NULL format string gives NULL
    ("SELECT format('%s', note), format(note, id), format(name) FROM a", [False, True, False]),
    # x IN (SELECT y): NULL when x or y may be; ALL and a two-column subquery: no opinion
    (
        "SELECT id IN (SELECT a_id FROM b), id IN (SELECT val FROM b), note IN (SELECT a_id FROM b), id IN (SELECT a_id, id FROM b), id = ANY (SELECT a_id FROM b), note IN (1, 2) FROM a",
        [False, True, True, None, False, True],
    ),
    ("SELECT EXISTS (SELECT 1), id = ALL (SELECT a_id FROM b) FROM a", [False, None]),
]

MYSQL: list[tuple[str, list[Rule] | None]] = [
    ("SELECT id, note FROM a", [False, True]),
    # MariaDB: a zero divisor makes NULL (a warning); only a non-zero literal rules it out
    (
        "SELECT id / id, id DIV id, id % id, MOD(id, id), id / 2, id % 3, id / 0 FROM a",
        [True, True, True, True, False, False, True],
    ),
    ("SELECT a.id, b.val FROM a JOIN b ON b.a_id = a.id", [False, True]),
    ("SELECT a.id, b.id, id, val FROM a LEFT JOIN b ON b.a_id = a.id", [False, True, None, True]),
    (
        "SELECT a.id, b.id, name, a_id FROM a RIGHT JOIN b ON b.a_id = a.id",
        [True, False, True, False],
    ),
    ("SELECT x.id FROM a x", [False]),
    # aggregates apart from bare columns: without GROUP BY a query holding one gives a row
    # of NULL columns when nothing matches (MariaDB), so coalesce(note, name) is NULL there
    ("SELECT count(*), min(id), max(note) FROM a", [False, True, True]),
    (
        "SELECT coalesce(note, name), ifnull(note, note), nullif(id, 1) FROM a",
        [False, True, True],
    ),
    (
        "SELECT (id), CAST(note AS CHAR), 1, 'x', TRUE, CURRENT_TIMESTAMP, CURRENT_DATE, NULL FROM a",
        [False, True, False, False, False, False, False, True],
    ),
    ("SELECT (SELECT 1), id IS NULL, note IS NOT NULL FROM a", [True, False, False]),
    (
        "SELECT CASE WHEN id = 1 THEN name END, CASE WHEN id = 1 THEN name ELSE name END, CASE WHEN id = 1 THEN note ELSE name END FROM a",
        [True, False, True],
    ),
    (
        "SELECT IF(id = 1, name, name), IF(id = 1, note, name), IF(id = 1, name, NULL) FROM a",
        [False, True, True],
    ),
    (
        "SELECT lower(name), lower(note), id + 1, note + 1, -id, NOT id FROM a",
        [False, True, False, True, False, False],
    ),
    ("SELECT nosuch FROM a", [None]),
    ("SELECT id FROM a, b", [None]),
    ("SELECT name FROM a, b", [False]),
    ("SELECT t.x FROM t", [False]),
    ("INSERT INTO a (id) VALUES (1)", None),
    ("SELECT @v FROM a", [None]),
    ("SELECT id, val FROM a LEFT JOIN b ON true", [None, True]),
    ("SELECT `id`, `note` FROM `a`", [False, True]),
    ("SELECT val FROM a LEFT JOIN b ON true JOIN nosuch ON true", [True]),
    ("SELECT id AS k, note AS n FROM a", [False, True]),
    # derived tables and CTEs keep their columns' rules; a CTE is named without a database
    # (s.t is the table even beside a CTE t); a CTE that is no plain SELECT has no columns
    ("SELECT id FROM (SELECT id, note FROM a) AS d", [False]),
    ("SELECT d.note, d.id FROM (SELECT id, note FROM a) AS d", [True, False]),
    ("WITH c AS (SELECT id, note FROM a) SELECT c.id, c.note FROM c", [False, True]),
    (
        "WITH c AS (SELECT id FROM a) SELECT c.id, b.val FROM b LEFT JOIN c ON c.id = b.a_id",
        [True, True],
    ),
    ("WITH t AS (SELECT note AS x FROM a) SELECT x FROM t", [True]),
    ("WITH t AS (SELECT note AS x FROM a) SELECT x FROM s.t", [False]),
    ("WITH c AS (SELECT id FROM a) SELECT id FROM (SELECT id FROM c) AS d", [False]),
    ("WITH c AS (SELECT note AS n FROM a), d AS (SELECT n FROM c) SELECT n FROM d", [True]),
    ("WITH c AS (SELECT 1 UNION SELECT 2) SELECT x FROM c, t", [False]),
    ("SELECT 1, x FROM a JOIN (SELECT 1 UNION SELECT 2) AS d JOIN t", [False, False]),
    # * and t.*: every column of every relation, or of the one named
    ("SELECT * FROM a", [False, False, True]),
    ("SELECT b.* FROM a LEFT JOIN b ON b.a_id = a.id", [True, True, True]),
    ("SELECT * FROM a LEFT JOIN b ON b.a_id = a.id", [False, False, True, True, True, True]),
    ("SELECT q.* FROM a", []),
    ("SELECT id FROM (SELECT * FROM a) AS d", [None]),  # a derived table's * is not named
    ("SELECT q.id FROM a", [None]),
    # an aggregate query without GROUP BY: one row of NULL bare columns when nothing
    # matches (its *, coalesce of them too); not with GROUP BY, not for a window function
    # (a row per row), not for a column it cannot resolve; SQLite's TOTAL is an aggregate
    (
        "SELECT count(*), id, coalesce(note, name), 'x', a.* FROM a",
        [False, True, True, False, True, True, True],
    ),
    ("SELECT count(*), id FROM a GROUP BY id", [False, False]),
    ("SELECT count(*) OVER (), id FROM a", [None, False]),
    ("SELECT (SELECT count(*) FROM b), id FROM a", [True, False]),
    ("SELECT count(*), nosuch FROM a", [False, None]),
    ("SELECT total(id), name FROM a", [True, True]),  # an aggregate: NULL over no row here
    ("SELECT f(note), f(name) FROM a", [True, False]),  # an unknown function is no TOTAL
    # in a GROUP BY group there is a row: min/max/sum are NULL only if their argument may
    # be; other expressions keep their own rule; without GROUP BY max(1) is NULL over no row
    (
        "SELECT min(id), max(note), sum(id), max(1), nullif(id, 1), coalesce(note, name) FROM a GROUP BY name",
        [False, True, False, False, True, False],
    ),
    ("SELECT max(1) FROM a", [True]),
    # WITH ROLLUP (and WITH CUBE, which sqlglot reads too) adds total rows: the grouped
    # columns are NULL there and the aggregates are not taken per group
    ("SELECT name, count(*), max(id) FROM a GROUP BY name WITH ROLLUP", [True, False, True]),
    ("SELECT name, count(*), max(id) FROM a GROUP BY name WITH CUBE", [True, False, True]),
    # a parenthesized SELECT is its SELECT; UNION: NULL when either side may be; a side
    # whose * names nothing known leaves fewer rules, not an error
    ("(SELECT id, note FROM a)", [False, True]),
    ("SELECT note FROM a UNION SELECT id FROM a", [True]),
    ("SELECT * FROM nosuch UNION SELECT id FROM a", []),
]


@pytest.mark.parametrize(("sql", "rules"), POSTGRES, ids=[f"pg{i}" for i, _ in enumerate(POSTGRES)])
def test_postgres(sql: str, rules: list[Rule] | None) -> None:
    # ids are numbers: SQL holds "::", which a pytest node id cannot (mutmut passes ids)
    assert target_rules("postgresql", sql, CATALOG) == rules


@pytest.mark.parametrize(("sql", "rules"), MYSQL, ids=[f"mysql{i}" for i, _ in enumerate(MYSQL)])
def test_mysql(sql: str, rules: list[Rule] | None) -> None:
    assert target_rules("mysql", sql, MYSQL_CATALOG) == rules


def test_unparsable_is_none() -> None:
    assert target_rules("postgresql", "SELEC nonsense", CATALOG) is None
    assert target_rules("mysql", "SELECT FROM WHERE (", CATALOG) is None


def test_mysql_rules_read_mysql_by_default() -> None:
    assert mysql_rules("SELECT `id` FROM a", MYSQL_CATALOG) == [False]


def test_without_a_catalog_columns_have_no_opinion() -> None:
    assert target_rules("postgresql", "SELECT id, count(*) FROM a") == [None, False]
    assert target_rules("mysql", "SELECT id, count(*) FROM a") == [None, False]


def test_relation_rule() -> None:
    relation = Relation({"k": False, "n": True})
    assert relation.rule("k") is False
    assert relation.rule("n") is True
    relation.nullable = True
    assert relation.rule("k") is True
    with pytest.raises(KeyError, match="missing"):
        relation.rule("missing")


def test_scope_lookup_walks_outwards_and_refuses_ambiguity() -> None:
    outer = Scope({}, {})
    outer.relations["o"] = Relation({"x": False, "shared": False})
    inner = outer.child()
    assert inner.parent is outer
    assert inner.relations == {}
    inner.relations["i"] = Relation({"y": True, "shared": True})
    inner.relations["j"] = Relation({"shared": False})
    assert inner.lookup(["y"]) is True
    assert inner.lookup(["x"]) is False  # found outside
    assert inner.lookup(["o", "x"]) is False
    assert inner.lookup(["shared"]) is False  # ambiguous inside: the outer one
    assert inner.lookup(["public", "i", "y"]) is True
    assert inner.lookup(["nowhere"]) is None
    assert inner.lookup(["zz", "y"]) is None


def test_child_scopes_see_but_do_not_share_ctes() -> None:
    outer = Scope({}, {"c": Relation({"k": False})})
    inner = outer.child()
    inner.ctes["d"] = Relation({})
    assert set(inner.ctes) == {"c", "d"}
    assert set(outer.ctes) == {"c"}
    assert inner.catalog is outer.catalog


# SQLite's own rules (codegen/nullability_sqlite.py): a: id, name NOT NULL, note nullable
SQLITE: list[tuple[str, list[Rule] | None]] = [
    ("SELECT a.id, b.id FROM a FULL OUTER JOIN b ON b.a_id = a.id", [True, True]),
    ("SELECT id / 2, id / 0, id / id, id % 0.5, id % 3", [False, True, True, True, False]),
    ("SELECT id + 1, id - id, id * 0, id * 2, name || 'x'", [False, True, True, False, False]),
    ("SELECT sqrt(id), ln(id), date(name), strftime('%Y', name), julianday(name)", [True] * 5),
    ("SELECT json_type(name), unicode(name), name -> '$.a', upper(name), typeof(note)",
     [True, True, True, False, False]),
    ("SELECT min(name), max(id), group_concat(name), sum(id), avg(id), total(id), count(note)"
     " FROM a GROUP BY note", [False, False, False, True, True, True, False]),
    ("SELECT count(*), max(id) FROM a", [False, True]),
    ("SELECT printf('%s', note), coalesce(note, name), iif(id, 1, 2), nosuch(id) FROM a",
     [False, False, False, None]),
    ("SELECT id FROM a UNION SELECT note FROM a", [True]),
    # SQLite's rules (id - id may be NaN: NULL) hold on both sides of a UNION, in CTEs,
    # in derived tables (SQLite allows one without an alias, and in double parentheses)
    ("SELECT id - id FROM a UNION SELECT id FROM a", [True]),
    ("SELECT id FROM a UNION SELECT id - id FROM a", [True]),
    ("WITH c AS (SELECT id - id AS x FROM a) SELECT x FROM c", [True]),
    ("SELECT d.x, d.y FROM (SELECT id - id AS x, id AS y FROM a) AS d", [True, False]),
    ("SELECT x FROM ((SELECT id - id AS x FROM a)) AS d", [True]),
    ("SELECT * FROM (SELECT id, note FROM a)", [False, True]),
    # an aggregate over the rows FILTER keeps: maybe none, so NULL but for count
    ("SELECT count(*) FILTER (WHERE id > 1), max(id) FILTER (WHERE id > 1)", [False, True]),
]  # fmt: skip


@pytest.mark.parametrize(("sql", "rules"), SQLITE, ids=[f"sqlite{i}" for i, _ in enumerate(SQLITE)])
def test_sqlite(sql: str, rules: list[Rule] | None) -> None:
    if "FROM" not in sql:
        sql += " FROM a"
    assert target_rules("sqlite", sql, MYSQL_CATALOG) == rules


def test_sqlite_returning_reads_the_written_row() -> None:
    sql = "INSERT INTO a (name) VALUES (?) RETURNING id, note, id / 2"
    assert target_rules("sqlite", sql, MYSQL_CATALOG) == [False, True, False]
    # UPDATE and DELETE name their table without a column list; SQLite's rules apply
    for sql in (
        "UPDATE a SET name = ? RETURNING id, note, id - id",
        "DELETE FROM a RETURNING id, note, id - id",
    ):
        assert target_rules("sqlite", sql, MYSQL_CATALOG) == [False, True, True]


def test_mysql_rules_without_returning_or_a_known_table_is_none() -> None:
    # mysql_rules itself, not target_rules (which turns an exception into None too)
    assert mysql_rules("INSERT INTO a (id) VALUES (1)", MYSQL_CATALOG) is None
    sql = "INSERT INTO nosuch (x) VALUES (1) RETURNING x"
    assert mysql_rules(sql, MYSQL_CATALOG, dialect="sqlite") is None


# one_row: an aggregate without GROUP BY yields exactly one row, whatever matches; not with
# GROUP BY, HAVING, LIMIT/OFFSET (LIMIT 0 leaves none), a set operation, a window function
# alone, a set-returning function beside the aggregate (PostgreSQL), an aggregate only in
# a subquery
ONE_ROW: list[tuple[str, str, bool]] = [
    ("postgresql", "SELECT count(*) FROM a", True),
    ("postgresql", "WITH c AS (SELECT 1) SELECT coalesce(max(id), 0), avg(id) FROM a WHERE false", True),
    ("postgresql", "SELECT count(*) FROM a GROUP BY note", False),
    ("postgresql", "SELECT count(*) FROM a HAVING count(*) > 1", False),
    ("postgresql", "SELECT count(*) FROM a LIMIT 0", False),
    ("postgresql", "SELECT count(*) FROM a OFFSET 1", False),
    ("postgresql", "SELECT count(*), generate_series(1, 0) FROM a", False),
    ("postgresql", "SELECT count(*) FROM a UNION ALL SELECT 1", False),
    ("postgresql", "SELECT row_number() OVER () FROM a", False),
    ("postgresql", "SELECT (SELECT count(*) FROM b) FROM a", False),
    ("postgresql", "INSERT INTO a (id) VALUES (1) RETURNING id", False),
    ("mysql", "SELECT count(*), max(id) FROM a WHERE id = ?", True),
    ("mysql", "SELECT count(*) FROM a LIMIT ?", False),
    ("mysql", "SELECT note, count(*) FROM a GROUP BY note", False),
    ("mysql", "SELECT count(*) FROM a HAVING count(*) > 0", False),
    ("sqlite", "SELECT total(id) FROM a", True),
    ("sqlite", "SELECT count(*) FROM a LIMIT 0", False),
    ("sqlite", "SELECT count(*) OVER () FROM a", False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("engine", "sql", "one"), ONE_ROW, ids=[f"one{i}" for i, _ in enumerate(ONE_ROW)]
)
def test_one_row(engine: str, sql: str, one: bool) -> None:
    assert one_row(engine, sql) is one
