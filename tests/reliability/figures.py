"""The figures of a reliability run (cases, faults survived, writes lost), printed at the
end of the session by tests/reliability/conftest.py and quoted in docs/reliability.md."""

from __future__ import annotations

FIGURES: dict[str, float] = {}


def add(name: str, value: float = 1) -> None:
    FIGURES[name] = FIGURES.get(name, 0) + value


def put(name: str, value: float) -> None:
    FIGURES[name] = value


def summary() -> list[str]:
    return [f"{name}: {value:g}" for name, value in sorted(FIGURES.items())]
