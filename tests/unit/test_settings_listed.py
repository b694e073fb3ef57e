""".env.example lists every setting with its default (its first line, docs/architecture.md,
docs/services.md say so): each field of each service's settings class (lib/config.py's
base, the client settings of lib/clients/settings.py it lists, its own), named as
load_settings reads it, `<SVC>_<NAME>` before `<NAME>`; and docs/architecture.md's settings
table has a row for each (README.md says that page covers every setting)."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import BaseModel

from lib import registry
from lib.clients import settings as client_settings
from lib.config import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / ".env.example"
# what load_settings sets itself (the service's name), never a variable
NOT_SETTINGS = {"service"}
# the values .env.example gives for `make run` instead of the code's defaults: the local
# Redis, `make keys`' development keys, users' JWK Set, the examples' passkey host and the
# role that enrols a second factor at sign-in in docs/examples.md
RUN_VALUES = {"REDIS_URL", "JWKS_URL", "JWT_PUBLIC_KEY_FILE", "JWT_PRIVATE_KEY_FILE",
              "USERS_JWT_KEYS_DIR", "ENCRYPTION_KEY_FILE", "WEBAUTHN_RP_ID",
              "SECOND_FACTOR_ROLES"}  # fmt: skip


def service_settings() -> list[tuple[registry.Microservice, type[ServiceSettings]]]:
    """Each built service of lib/registry.py and the settings class of its settings.py."""
    found = []
    for service in registry.MICROSERVICES:
        if not service.built:
            continue
        module = importlib.import_module(f"services.{service.name}.settings")
        [settings] = [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, ServiceSettings) and cls.__module__ == module.__name__
        ]
        found.append((service, settings))
    return found


def client_fields() -> set[str]:
    """Every field of lib/clients/settings.py's classes, whether a service lists it or not."""
    return {
        field
        for _, cls in inspect.getmembers(client_settings, inspect.isclass)
        if issubclass(cls, BaseModel) and cls.__module__ == client_settings.__name__
        for field in cls.model_fields
    }


def setting_names() -> dict[str, set[str]]:
    """field -> the names it is read by in some service (`<SVC>_<NAME>`, `<NAME>`)."""
    names: dict[str, set[str]] = {field: {field.upper()} for field in client_fields()}
    for service, settings in service_settings():
        for field in set(settings.model_fields) - NOT_SETTINGS:
            names.setdefault(field, set()).update(
                {f"{service.env_prefix}_{field.upper()}", field.upper()}
            )
    return names


def named_in_env_example() -> set[str]:
    """Each variable .env.example sets, or shows commented out (an optional one)."""
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))


def test_every_setting_is_in_env_example() -> None:
    named = named_in_env_example()
    fields = setting_names()
    assert {"ws_ping_interval", "catalog_timeout", "outbox_interval", "port"} <= fields.keys()
    missing = sorted(field.upper() for field, names in fields.items() if not names & named)
    assert not missing, f".env.example does not list {missing}"


def plain(value: Any) -> Any:
    return value.get_secret_value() if hasattr(value, "get_secret_value") else value


def test_env_example_gives_the_code_s_defaults() -> None:
    """Each value .env.example sets is the default of every service that reads it (under
    the name that service reads first), but for RUN_VALUES: copied to .env, it changes
    nothing else."""
    env = {k: v for k, v in dotenv_values(ENV_EXAMPLE).items() if v is not None}
    compared = 0
    for service, settings in service_settings():
        defaults = settings.model_validate({})
        for field in set(settings.model_fields) - NOT_SETTINGS:
            read = [n for n in (f"{service.env_prefix}_{field.upper()}", field.upper()) if n in env]
            if not read or read[0] in RUN_VALUES:
                continue
            given = settings.model_validate({field: env[read[0]]})
            assert plain(getattr(given, field)) == plain(getattr(defaults, field)), (
                f"{read[0]}={env[read[0]]}: {service.name}'s default is {getattr(defaults, field)}"
            )
            compared += 1
    assert compared > 300


def table_names() -> list[re.Pattern[str]]:
    """The names docs/architecture.md's settings table gives in its first column, each a
    pattern: `X[_FILE]` is X and X_FILE, `<SVC>_` any service's prefix, `X_*` any X_..."""
    page = (ROOT / "docs" / "architecture.md").read_text()
    start = page.index("| setting | meaning |")
    rows = page[start : page.index("\n\n", start)].splitlines()[2:]
    services = "|".join(s.env_prefix for s in registry.MICROSERVICES)
    patterns = []
    for row in rows:
        for name in re.findall(r"`([^`]+)`", row.split(" | ")[0]):
            name = re.escape(name).replace(r"\[_FILE\]", "(_FILE)?")
            name = name.replace("<SVC>_", f"({services})_").replace(r"_\*", "_[A-Z0-9_]+")
            patterns.append(re.compile(name))
    return patterns


def test_every_setting_has_a_row_in_architecture_md() -> None:
    patterns = table_names()
    assert len(patterns) > 80
    missing = sorted(
        field.upper()
        for field, names in setting_names().items()
        if not any(p.fullmatch(n) for p in patterns for n in names)
    )
    assert not missing, f"docs/architecture.md's settings table has no row for {missing}"
