"""Shared test helpers: a test key pair, tokens, and service settings."""

from __future__ import annotations

import atexit
import importlib
import inspect
import math
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

from pydantic import SecretStr

from lib.auth.principal import Role
from lib.auth.tokens import TokenSigner, generate_keypair
from lib.config import ServiceSettings
from services.departments.settings import DepartmentsSettings
from tests.servers import db_bounds, pooler_settings

KEYS = generate_keypair()
# A token a test signs outlives the whole run (longer than the production ACCESS_TOKEN_TTL,
# 900 s); module-level headers are `Bearer`s, signed when read. Tests of expiry sign with
# a TTL and a clock of their own.
TEST_TOKEN_TTL = 24 * 3600


S = TypeVar("S", bound=ServiceSettings)
# the object storage of this test process (pictures, the erasure ledger: lib/erasure.py), so
# a service's erasure consumer reads this run's ledger, never the var/storage of `make run`
TEST_STORAGE = tempfile.mkdtemp(prefix="fixup-storage-")
atexit.register(shutil.rmtree, TEST_STORAGE, True)


def service_settings(cls: type[S], service: str, dsn: str, **overrides: Any) -> S:
    """A service's settings for a test: its database, the test key, limits out of the way."""
    values: dict[str, Any] = {
        "service": service,
        "database_url": dsn,
        "jwt_public_key": SecretStr(KEYS[1]),
        "rate_limit_ip_rate": 1000.0,
        "rate_limit_ip_burst": 1000,
        "rate_limit_user_rate": 1000.0,
        "rate_limit_user_burst": 1000,
        # the revocation record (Redis away): the discard port unless a test runs users,
        # never the users of a `make run` on this machine
        "revocation_record_url": "http://127.0.0.1:9",
        **pooler_settings(dsn),  # make test-pgbouncer: through PgBouncer
        **db_bounds(),
    }
    if "storage_dir" in cls.model_fields:
        values["storage_dir"] = TEST_STORAGE
    return cls.model_validate(values | overrides)


def plain_app(name: str, dsn: str, **overrides: Any) -> Any:
    """`services.<name>.app.create_app` on its settings class (the one its module defines)."""
    module = importlib.import_module(f"services.{name}.settings")
    [settings] = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, ServiceSettings) and cls.__module__ == module.__name__
    ]
    app = importlib.import_module(f"services.{name}.app")
    return app.create_app(service_settings(settings, name, dsn, **overrides))


def settings_for(dsn: str, **overrides: Any) -> DepartmentsSettings:
    return service_settings(DepartmentsSettings, "departments", dsn, **overrides)


def token(role: Role = Role.ADMIN, *, ttl: int = TEST_TOKEN_TTL, **kwargs: Any) -> str:
    value, _ = TokenSigner(KEYS[0], ttl, **kwargs).issue(uuid.uuid4(), role, True)
    return value


def bearer(role: Role = Role.ADMIN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role)}"}


class Bearer(Mapping[str, str]):
    """An Authorization header signed each time it is read, never at import: a module's
    `ADMIN = Bearer(Role.ADMIN)` holds whenever its tests run (tests/unit/test_import_time.py)."""

    def __init__(self, role: Role = Role.ADMIN, user_id: uuid.UUID | None = None) -> None:
        self.role, self.user_id = role, user_id or uuid.uuid4()  # one caller, as before

    def __getitem__(self, name: str) -> str:
        if name != "Authorization":
            raise KeyError(name)
        value, _ = TokenSigner(KEYS[0], TEST_TOKEN_TTL).issue(self.user_id, self.role, True)
        return f"Bearer {value}"

    def __iter__(self) -> Iterator[str]:
        return iter(("Authorization",))

    def __len__(self) -> int:
        return 1


def wall_ms() -> int:
    """This host's clock in ms, rounded up: the not-before time of a revocation written by
    hand (users writes its database's clock; tokens signed here use this host's)."""
    return math.ceil(time.time() * 1000)
