"""The README's benchmark table is bench/results/latest.json rendered (python -m bench.readme):
a hand edit of a figure, or a results file committed without its README, fails here."""

from __future__ import annotations

import json

from bench import readme


def test_readme_table_is_the_latest_results() -> None:
    assert readme.main(["--check"]) == 0


def test_every_benchmark_of_the_results_has_a_row() -> None:
    doc = json.loads(readme.RESULTS.read_text())
    table = readme.render(doc)
    for name in doc["benchmarks"]:
        assert f"| `{name}` |" in table
    assert f"{doc['cores']} cores" in table
