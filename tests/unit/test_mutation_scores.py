"""tools/checks/mutation_scores: the README's scores are docs/testing.md's table, and that table
has one row per mutated module."""

from __future__ import annotations

from tools.checks import mutation, mutation_scores
from tools.checks.mutation_scores import Score

TABLE = """
| module | mutants | killed | equivalent | killed of all |
| --- | ---: | ---: | ---: | ---: |
| lib.http.etag * | 34 | 32 | 2 | 94.1% |
| lib.http.listing | 123 | 123 | 0 | 100% |
| services.users.sessions | 10 | 8 | 1 | 80% |
"""


def test_the_readme_block_is_current_and_every_module_has_a_row() -> None:
    assert mutation_scores.main(["check"]) == 0


def test_rows_are_read_with_or_without_the_full_run_mark() -> None:
    assert mutation_scores.scores(TABLE) == [
        Score("lib.http.etag", 34, 32, 2, confirmed=True),
        Score("lib.http.listing", 123, 123, 0, confirmed=False),
        Score("services.users.sessions", 10, 8, 1, confirmed=False),
    ]


def test_the_block_has_a_line_per_package_and_counts_what_is_not_killed() -> None:
    text = mutation_scores.block(mutation_scores.scores(TABLE))
    assert "- `lib.http`: etag 32/34 (2 equivalent), listing 123/123\n" in text
    assert "- `services.users`: sessions 8/10 (1 equivalent)\n" in text
    assert "163 of 167 killed, 3 equivalent, 1 not killed. 2 of the rows predate the last" in text
    confirmed = [Score("lib.http.etag", 34, 32, 2)]
    assert mutation_scores.block(confirmed).count("predate") == 0
    one = [*confirmed, Score("lib.http.listing", 123, 123, 0, confirmed=False)]
    assert " 1 row predates the last `make mutate`, which does not confirm it (" in (
        mutation_scores.block(one)
    )


def test_a_mutated_module_without_a_row_or_a_row_without_a_module_is_a_problem() -> None:
    rows = mutation_scores.scores()
    first = mutation.module_name(mutation.modules()[0])
    missing = [r for r in rows if r.module != first]
    assert mutation_scores.problems(missing) == [
        f"{first}: mutated but has no row in docs/testing.md"
    ]
    extra = [*rows, Score("lib.nothing", 1, 1, 0)]
    assert mutation_scores.problems(extra) == [
        "lib.nothing: a row in docs/testing.md but not mutated"
    ]
    weak = [*missing, Score(first, 10, 8, 0)]
    assert mutation_scores.problems(weak) == [f"{first}: 8 of 10 killable mutants killed"]
