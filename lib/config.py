"""Settings from the environment (and `.env`), typed and validated at start.

One `.env` serves every process, so a service-specific name wins over the plain one:
`USERS_PORT` over `PORT`. Any setting may instead come from a file, `<NAME>_FILE`, and every
file of the directory `SECRETS_DIR` is read as the setting it is named after (a mounted
Kubernetes Secret or Compose secrets; ADR 0036): the value wins over `<NAME>_FILE`, which
wins over `SECRETS_DIR`. Files are read once, at start. A bad or missing value stops the
service with one line naming the variable (`load_settings`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

from lib import registry
from lib.pooler import Pooler, through
from lib.redact import secret_params
from lib.settings_sources import FileVariables, environment, variable


class ServiceSettings(BaseSettings):
    """What every HTTP service reads; a service subclasses it for its own settings and
    names itself in `registry_name`: its port, database URL (and gRPC port) then default
    to its entry in lib/registry.py, so they are written down nowhere else."""

    model_config = SettingsConfigDict(extra="ignore", validate_default=True)
    registry_name: ClassVar[str] = ""

    service: str = "fixup"
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64)
    database_url: str = ""
    db_pool_min: int = Field(2, ge=0)
    db_pool_max: int = Field(10, ge=1)
    # a full pool answers 503 after this long instead of queueing requests forever
    db_acquire_timeout: float = Field(3.0, gt=0, le=60)
    # asyncpg resets a connection on every release; a service whose handlers never change
    # session state (SET, LISTEN, temp tables, session locks) may turn it off (ADR 0005)
    db_pool_reset: bool = True
    # start-up with the database down (lib/db/waiting.py): the service serves (/ready 503)
    # and keeps connecting for this many seconds, 0 = until stopped; each attempt is
    # bounded by DB_CONNECT_TIMEOUT (a black-holed server)
    db_connect_wait: float = Field(0.0, ge=0)
    db_connect_timeout: float = Field(10.0, gt=0, le=300)
    # one PostgreSQL command: a primary that froze or was cut off answers 503 after this long
    # (the connection is dropped, the next one goes to whichever member now takes writes);
    # below the gateway's proxy_read_timeout (30 s), so a request ends here, not at NGINX
    db_command_timeout: float = Field(5.0, gt=0, le=25)
    # PostgreSQL through PgBouncer in transaction mode (lib/pooler.py, ADR 0037): the
    # pool connects to PGBOUNCER_ADDR (host:port; the URL's database, user and password)
    # instead of DATABASE_URL's host:port, which the tools (migrations, seed) keep using
    pooler: Pooler = ""
    pgbouncer_addr: str = "127.0.0.1:6432"
    redis_url: str = ""
    # Redis through Sentinel (lib/redis_client.py; wins over REDIS_URL): host:port of each
    # Sentinel, the master's name they monitor, the bound of one question to a Sentinel
    redis_sentinels: Annotated[list[str], NoDecode] = Field(default_factory=list)
    redis_sentinel_service: str = Field("fixup", min_length=1, max_length=100)
    redis_sentinel_timeout: float = Field(0.5, gt=0, le=10)
    log_level: str = "INFO"
    log_file: str = ""
    # query parameters whose values no log may hold, on top of lib/redact.py's built-in ones
    log_redact_params: Annotated[list[str], NoDecode] = Field(default_factory=list)
    shutdown_timeout: float = Field(10.0, gt=0)
    # how long a handler may wait for the whole request body (lib/http/body.py: 408 and the
    # connection closed); slow heads and bodies are bounded at the gateway too (NGINX)
    http_body_timeout: float = Field(15.0, gt=0, le=3600)
    # how long a kept-alive connection may stay idle between requests (aiohttp's default is
    # an hour): longer than the proxies' upstream idle time (NGINX 60 s), so they close first
    http_keepalive_timeout: float = Field(75.0, gt=0, le=86400)
    # the page cache of conditional GETs (lib/http/conditional.py, ADR 0056): the bytes of
    # pages each process keeps, least recently used dropped first; 0 turns it off
    page_cache_bytes: int = Field(8 * 1024 * 1024, ge=0, le=1024**3)
    export_max_rows: int = Field(
        10_000,
        ge=1,
        le=100_000,
        description="Rows of one table a person's data export may hold (ADR 0059); more: 413.",
    )
    public_base_url: str = "http://localhost:8080"
    profiling_enabled: bool = False
    profiling_port: int = Field(0, ge=0, le=65535)

    jwt_public_key: SecretStr = SecretStr("")
    jwt_public_key_file: str = ""
    jwt_private_key: SecretStr = SecretStr("")
    jwt_private_key_file: str = ""
    # signing keys by id (ADR 0032): the key directory (users signs with its signing key;
    # any service may verify from its published keys), read again this often; else users'
    # JWK Set at JWKS_URL (settings only: nothing in a token is fetched), fetched every
    # JWKS_REFRESH_INTERVAL and, for an unknown kid, at most once per
    # JWKS_MIN_REFRESH_INTERVAL, each fetch bounded by JWKS_TIMEOUT
    jwt_keys_dir: str = ""
    jwt_keys_reload_interval: float = Field(5.0, gt=0, le=300)
    jwks_url: str = ""
    jwks_refresh_interval: float = Field(60.0, gt=0, le=3600)
    jwks_min_refresh_interval: float = Field(5.0, gt=0, le=300)
    jwks_timeout: float = Field(2.0, gt=0, le=30)
    access_token_ttl: int = Field(900, ge=1)
    refresh_token_ttl: int = Field(2_592_000, ge=1)
    # token revocation (lib/auth/revocation.py): Redis key <prefix><user id>; how long a
    # process reuses what it read; the bound of one Redis call; fail-fast after a failure
    revocation_prefix: str = Field("fixup:revoked:", min_length=1, max_length=100)
    revocation_cache_ttl: float = Field(1.0, ge=0, le=60)
    revocation_timeout: float = Field(0.25, gt=0, le=10)
    revocation_retry: float = Field(1.0, gt=0, le=60)
    # Redis away: ask the record (users' GET /v1/auth/revocation; ADR 0010) with this bound
    # per call, its breaker opening after this many failures in a row (for REVOCATION_RETRY)
    revocation_record_url: str = registry.get("users").local_url
    revocation_record_timeout: float = Field(0.5, gt=0, le=10)
    revocation_record_failures: int = Field(2, ge=1, le=100)
    # the skew between hosts' clocks a verifier forgives on iat/nbf/exp (ADR 0010): small,
    # since a token stays usable that much past its exp
    token_clock_leeway: int = Field(5, ge=0, le=30)

    rate_limit_ip_rate: float = Field(20.0, gt=0)
    rate_limit_ip_burst: int = Field(40, ge=1)
    rate_limit_user_rate: float = Field(10.0, gt=0)
    rate_limit_user_burst: int = Field(40, ge=1)  # a signed-in burst, not below the per-IP one
    # every Redis bucket key starts with this: runs sharing one Redis (tests) set their own
    rate_limit_prefix: str = "fixup:rl:"
    # the bound of one Redis bucket call, and how often an outage tries Redis again; in
    # between, each process decides with its own bucket of the same settings (ADR 0005)
    rate_limit_redis_timeout: float = Field(0.25, gt=0, le=10)
    rate_limit_redis_retry: float = Field(1.0, gt=0, le=60)
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1/32", "::1/128"]
    )
    cors_allow_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:8080"]
    )

    @model_validator(mode="before")
    @classmethod
    def _registry_defaults(cls, data: Any) -> Any:
        """The registry entry's port, database URL (and gRPC port) where nothing set them: a
        validator, pydantic's public hook, rather than rewriting the fields' defaults."""
        if not cls.registry_name or not isinstance(data, dict):
            return data
        return {**registry_defaults(cls), **data}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only what load_settings passes in: it reads the sources, to name the variable of each
        bad value."""
        return (init_settings,)

    @field_validator("jwt_public_key_file", "jwt_private_key_file")
    @classmethod
    def _key_file(cls, value: str) -> str:
        if value and not Path(value).is_file():
            raise ValueError(f"no such file: {value} (make keys writes a development pair)")
        return value

    @field_validator("jwt_keys_dir")
    @classmethod
    def _keys_dir(cls, value: str) -> str:
        if value and not Path(value, "keyring.json").is_file():
            raise ValueError(
                f"no signing keyring at {value}/keyring.json (make keys writes a development"
                " one; make rotate secret=jwt step=migrate converts a key directory)"
            )
        return value

    @field_validator("jwks_url")
    @classmethod
    def _jwks_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator(
        "trusted_proxies",
        "cors_allow_origins",
        "log_redact_params",
        "redis_sentinels",
        mode="before",
    )
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("log_redact_params")
    @classmethod
    def _param_names(cls, value: list[str]) -> list[str]:
        secret_params(value)  # raises on a name that is not one
        return value

    @field_validator("pgbouncer_addr", "redis_sentinels")
    @classmethod
    def _addresses(cls, value: str | list[str]) -> str | list[str]:
        for entry in [value] if isinstance(value, str) else value:
            host_port(entry)
        return value

    @field_validator("database_url")
    @classmethod
    def _dsn(cls, value: str) -> str:
        if value and value.split("://", 1)[0] not in {"postgresql", "postgres", "mysql", "mariadb"}:
            raise ValueError("must start with postgresql:// or mysql://")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ServiceSettings:
        if self.db_pool_min > self.db_pool_max:
            raise ValueError("DB_POOL_MIN must not exceed DB_POOL_MAX")
        if self.workers > 1 and not (self.redis_url or self.redis_sentinels):
            raise ValueError(
                "WORKERS > 1 needs REDIS_URL or REDIS_SENTINELS"
                " (rate limits and fan-out are shared)"
            )
        if self.pooled and self.db_pool_reset:
            raise ValueError(
                "POOLER=pgbouncer needs DB_POOL_RESET=false: in transaction mode each"
                " transaction may get another server connection, so session state (SET,"
                " LISTEN, temporary tables, session advisory locks) cannot be kept; a service"
                " that needs it keeps a direct DATABASE_URL (ADR 0037)"
            )
        return self

    @property
    def pooled(self) -> bool:
        """Does this service's pool reach PostgreSQL through the pooler?"""
        postgresql = self.database_url.startswith(("postgresql://", "postgres://"))  # as _dsn
        return bool(self.pooler) and postgresql

    @property
    def pool_url(self) -> str:
        """The URL the service's pool opens: DATABASE_URL, or through PGBOUNCER_ADDR."""
        return through(self.database_url, self.pgbouncer_addr) if self.pooled else self.database_url

    def key_retirement_window(self) -> float:
        """How long a retired signing key stays trusted after it stopped signing: a token
        it signed lives ACCESS_TOKEN_TTL, forgiven TOKEN_CLOCK_LEEWAY, and a replica may
        sign with it for one more JWT_KEYS_RELOAD_INTERVAL (ADR 0032)."""
        return self.access_token_ttl + self.token_clock_leeway + self.jwt_keys_reload_interval

    def public_key_pem(self) -> str:
        return _key(self.jwt_public_key, self.jwt_public_key_file)

    def private_key_pem(self) -> str:
        return _key(self.jwt_private_key, self.jwt_private_key_file)


def host_port(entry: str) -> tuple[str, int]:
    """`host:port` (a `REDIS_SENTINELS` entry, a listen address) -> (host, port); ValueError
    naming it otherwise."""
    host, sep, port = entry.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{entry!r} is not host:port")
    return host, int(port)


class GrpcServiceSettings(ServiceSettings):
    """A gRPC service (lib/grpc/process.py): `PORT` is its HTTP side port (/metrics,
    /health, /ready); gRPC listens on `GRPC_PORT`, by default the registry's."""

    grpc_port: int = Field(0, ge=0, le=65535)


def registry_defaults(cls: type[ServiceSettings]) -> dict[str, Any]:
    """What `cls.registry_name`'s entry in lib/registry.py gives a service by default."""
    entry = registry.get(cls.registry_name)
    defaults: dict[str, Any] = {
        "service": entry.name,
        "port": entry.http_port,
        "database_url": entry.default_database_url,
    }
    if entry.grpc_port is not None and "grpc_port" in cls.model_fields:
        defaults["grpc_port"] = entry.grpc_port
    return defaults


def _key(inline: SecretStr, file: str) -> str:
    """A PEM inline or from its file; `\\n` as .env writes a newline (a PEM has no `\\`,
    and a Compose secret taken from that variable holds it so)."""
    text = inline.get_secret_value() or (Path(file).read_text() if file else "")
    return text.replace("\\n", "\n")


S = TypeVar("S", bound=ServiceSettings)


class ConfigError(SystemExit):
    """Raised (as SystemExit(2)) after printing which variable is wrong."""


def load_settings(
    cls: type[S],
    service: str,
    env_file: Path = Path(".env"),
    overrides: dict[str, Any] | None = None,
) -> S:
    """Read `cls` for `service` by pydantic-settings' own sources, the first that has a
    setting giving it: `<SERVICE>_<NAME>` then `<NAME>`, each from the environment then
    `env_file`; then `<NAME>_FILE`; then SECRETS_DIR's files; `overrides` (field: value) win
    over all. On a bad value print `config: VAR: reason` (the variable that supplied it) and
    exit 2."""
    env = environment(env_file)
    errors: list[str] = []
    layers: list[tuple[PydanticBaseSettingsSource, Callable[[str], str]]] = []
    prefixes = (f"{service}_".upper(), "")
    for prefix in prefixes:
        named = partial(variable, prefix)
        layers.append((EnvSettingsSource(cls, env_prefix=prefix), named))
        layers.append((DotEnvSettingsSource(cls, env_file=env_file, env_prefix=prefix), named))
    files = FileVariables(cls, env, prefixes)
    layers.append((files, files.origin.__getitem__))
    if secrets_dir := env.get("SECRETS_DIR", ""):
        if Path(secrets_dir).is_dir():  # a file `<NAME>` (Kubernetes' `..data` links unread)
            for prefix in prefixes:
                secrets = SecretsSettingsSource(cls, secrets_dir=secrets_dir, env_prefix=prefix)
                layers.append((secrets, partial(variable, f"SECRETS_DIR/{prefix}")))
        else:
            errors.append(f"SECRETS_DIR: cannot read {secrets_dir}: not a directory")
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for source, name in layers:
        for field, value in source().items():
            if field not in values:
                values[field], origin[field] = value, name(field)
    overrides = overrides or {}
    errors += [line for field, line in files.errors.items() if field not in overrides]
    if errors:
        print("\n".join(f"config: {line}" for line in errors), file=sys.stderr)
        raise ConfigError(2)
    try:
        return cls.model_validate({**values, **overrides, "service": service})
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            var = origin.get(field) or (f"{service}_{field}".upper() if field else "")
            lines.append(f"config: {var or 'settings'}: {error['msg']}")
        print("\n".join(lines), file=sys.stderr)
        raise ConfigError(2) from None
