"""The benchmark tables are bench/results/latest.json rendered (python -m bench.readme): the
full one in docs/benchmarks.md, the headline rows in README.md. A hand edit of a figure, or a
results file committed without its pages, fails here."""

from __future__ import annotations

import json

import pytest

from bench import readme


def test_benchmark_tables_are_the_latest_results() -> None:
    assert readme.main(["--check"]) == 0


def test_every_benchmark_of_the_results_has_a_row() -> None:
    doc = json.loads(readme.RESULTS.read_text())
    table = readme.render(doc)
    for name in doc["benchmarks"]:
        assert f"| `{name}` |" in table
    assert f"{doc['cores']} cores" in table


def test_the_headline_rows_are_rows_of_the_full_table() -> None:
    doc = json.loads(readme.RESULTS.read_text())
    full = readme.render(doc).splitlines()
    headline = [line for line in readme.render_headline(doc).splitlines() if line.startswith("| `")]
    assert len(headline) == len(readme.HEADLINE)
    assert all(line in full for line in headline)
    assert "](docs/benchmarks.md)" in readme.render_headline(doc)


def test_a_headline_row_missing_from_the_results_is_an_error_naming_it() -> None:
    doc = json.loads(readme.RESULTS.read_text())
    doc["benchmarks"].pop("memory")
    with pytest.raises(SystemExit, match=r"'memory' row starting 'RSS per service'"):
        readme.render_headline(doc)
