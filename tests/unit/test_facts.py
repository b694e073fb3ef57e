"""lib.db.facts.Facts: every child at 0 from start(), bounded label values only."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from lib.db.facts import Facts

FACTS = Facts("test_facts_total", "A test counter.", outcome=("ok", "failed"))


def value(outcome: str) -> float | None:
    return REGISTRY.get_sample_value("test_facts_total", {"service": "unit", "outcome": outcome})


def test_start_creates_every_child_at_zero_and_count_adds() -> None:
    FACTS.start("unit")
    assert (value("ok"), value("failed")) == (0.0, 0.0)
    FACTS.count("unit", outcome="ok")  # no transaction open: at once
    FACTS.count("unit", 2, outcome="failed")
    assert (value("ok"), value("failed")) == (1.0, 2.0)


@pytest.mark.parametrize("labels", [{"outcome": "user-42"}, {}, {"outcome": "ok", "id": "1"}])
def test_a_label_value_not_listed_is_refused(labels: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="test_facts_total"):
        FACTS.count("unit", **labels)
