"""Every setting is changed by some test: each field of each built service's settings
class (lib/registry.py -> services/<name>/settings.py) and each MIGRATE_* variable of
tools/migrations/migrate.py is set somewhere under tests/ (as `name=`, "name" or NAME), so a
setting with a behavioural effect (timeouts, limits, TTLs, migration timeouts) has a test
that changes it and observes the change. The few without one yet are named below with
why; the list only shrinks (a listed setting that gains a test must leave it)."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

from lib import registry
from lib.config import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
UNOBSERVED: dict[str, str] = {}  # a setting no test changes yet: its name and why


def settings_fields() -> set[str]:
    found: set[str] = set()
    for service in registry.built_services():
        module = importlib.import_module(f"services.{service.name}.settings")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, ServiceSettings):
                found |= set(cls.model_fields)
    return found


def migrate_variables() -> set[str]:
    text = (ROOT / "tools" / "migrations" / "migrate.py").read_text()
    return set(re.findall(r'"(MIGRATE_[A-Z_]+)"', text))


def every_test_text() -> str:
    here = Path(__file__).resolve()
    return "\n".join(p.read_text() for p in (ROOT / "tests").rglob("*.py") if p != here)


def changed_by_a_test(name: str, text: str) -> bool:
    return bool(re.search(rf'\b{name}\s*=|"{name}"|\b{name.upper()}\b', text))


def test_every_setting_is_changed_by_a_test() -> None:
    text = every_test_text()
    names = settings_fields() | migrate_variables()
    assert migrate_variables() >= {"MIGRATE_LOCK_TIMEOUT", "MIGRATE_STATEMENT_TIMEOUT"}
    missing = {n for n in names if not changed_by_a_test(n, text)}
    assert missing <= set(UNOBSERVED), (
        f"settings no test changes: {sorted(missing - set(UNOBSERVED))}"
    )
    tested = set(UNOBSERVED) - missing
    assert not tested, f"now changed by a test, take them off UNOBSERVED: {sorted(tested)}"
    assert set(UNOBSERVED) <= names, f"not settings any more: {sorted(set(UNOBSERVED) - names)}"
