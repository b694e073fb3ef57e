"""Domain counters that count a fact once its transaction commits (lib.db.committed).

Beside the pools rather than in lib.metrics: they count committed facts, so they depend on
the transaction, and lib.metrics stays a leaf that every package may import (ADR 0026).
"""

from __future__ import annotations

import itertools

from prometheus_client import Counter

from lib.db.committed import after_commit


class Facts:
    """A counter of committed domain facts whose labels take only the values listed here:
    `start()` creates every child at 0, `count()` refuses any other value (a label that
    grows with users or ids would make a series per user) and counts after the commit."""

    def __init__(self, name: str, documentation: str, **values: tuple[str, ...]) -> None:
        self.name, self.values = name, values
        self.counter = Counter(name, documentation, ["service", *values])

    def start(self, service: str) -> None:
        for combination in itertools.product(*self.values.values()):
            self.counter.labels(service, *combination)

    def count(self, service: str, amount: float = 1, **labels: str) -> None:
        """Count `amount` once the transaction this runs in commits (at once outside one)."""
        if labels.keys() != self.values.keys():
            raise ValueError(f"{self.name}: labels {sorted(self.values)}")
        for label, value in labels.items():
            if value not in self.values[label]:
                raise ValueError(f"{self.name}: {label}={value!r} not in {self.values[label]}")
        child = self.counter.labels(service, *(labels[label] for label in self.values))
        after_commit(lambda: child.inc(amount))
