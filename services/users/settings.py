"""Settings of the users service (imported before any metric exists)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from lib.auth.passwords import ARGON2_DEFAULTS, Priority, default_workers
from lib.auth.principal import Role
from lib.clients.settings import (
    CatalogClientSettings,
    ChatClientSettings,
    DepartmentsClientSettings,
    OrdersClientSettings,
    PointsClientSettings,
)
from lib.config import ServiceSettings
from lib.erasure import ErasureSettings
from lib.secret_settings import SecretSettings

SERVICE = "users"


class UsersSettings(
    ServiceSettings,
    SecretSettings,
    DepartmentsClientSettings,
    PointsClientSettings,
    CatalogClientSettings,
    ChatClientSettings,
    OrdersClientSettings,
    ErasureSettings,
):
    registry_name: ClassVar[str] = SERVICE  # port and database: lib/registry.py
    db_pool_reset: bool = False  # no handler changes session state (ADR 0005)
    # --- auth flows (registration.py, sessions.py, passwords.py; ADR 0010)
    # argon2id, measured in ADR 0010: about 50 ms a hash on one core. Parallelism 1 keeps
    # one hash on one core, so ARGON2_WORKERS bounds the CPU a login storm can take.
    argon2_time_cost: int = Field(ARGON2_DEFAULTS["ARGON2_TIME_COST"], ge=1)
    argon2_memory_cost: int = Field(
        ARGON2_DEFAULTS["ARGON2_MEMORY_COST"], ge=8, description="KiB (OWASP: >= 19 MiB)"
    )
    argon2_parallelism: int = Field(ARGON2_DEFAULTS["ARGON2_PARALLELISM"], ge=1)
    argon2_workers: int = Field(
        default_factory=default_workers,
        ge=1,
        le=64,
        description="Threads hashing passwords (default: the cores less one, at least 1).",
    )
    argon2_queue: int = Field(16, ge=0, description="Hashes that may wait; beyond: 503.")
    argon2_priority: Priority = Field(
        "nice",
        description="Hashing threads: nice (nice 10: below the event loop, with a share even "
        "on a host busy with other work) or idle (SCHED_IDLE: only on a core nothing else "
        "wants; stalls on a saturated host). ADR 0010.",
    )
    revocation_restore_check: float = Field(
        1.0,
        gt=0,
        le=60,
        description="Seconds between two checks that Redis still holds every revocation "
        "(its marker and the newest record; absent: restored). ADR 0010.",
    )
    login_rate: float = Field(0.2, gt=0, description="Login attempts/s per email and per IP.")
    login_burst: int = Field(10, ge=1)
    mail_rate: float = Field(
        0.2, gt=0, description="Verification and password-reset mails/s per email address."
    )
    mail_burst: int = Field(10, ge=1)
    register_rate: float = Field(0.05, gt=0, description="Registrations/s per IP.")
    register_burst: int = Field(5, ge=1)
    reauth_max_age: int = Field(
        300,
        ge=30,
        le=86_400,
        description="Seconds a session's sign-in (or re-authentication) counts as recent "
        "for a sensitive action (services/users/reauth.py, ADR 0055).",
    )
    session_max_lifetime: int = Field(
        2_592_000,
        ge=60,
        description="Seconds a session (refresh family) lives from its sign-in, however "
        "often it is refreshed (30 days); then a refresh is refused and the person signs in "
        "again (ASVS V7.3.2, ADR 0055). REFRESH_TOKEN_TTL is the inactivity bound.",
    )
    verify_token_ttl: int = Field(86_400, ge=60)
    reset_token_ttl: int = Field(3_600, ge=60)
    cookie_secure: bool = True
    # --- passkeys (services/users/passkeys.py; ADR 0053): WebAuthn's relying party is the
    # gateway's public origin (PUBLIC_BASE_URL), what the browser shows in its address bar
    webauthn_rp_id: str = Field(
        "", description="The relying party id (a domain); empty: PUBLIC_BASE_URL's host."
    )
    webauthn_rp_name: str = Field("Fixup", min_length=1, description="Shown by the browser.")
    webauthn_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins an answer may come from, comma-separated; empty: "
        "PUBLIC_BASE_URL's origin.",
    )
    webauthn_challenge_ttl: int = Field(
        120, ge=10, le=600, description="Seconds a registration or sign-in challenge lives."
    )
    # --- the second factor (services/users/totp.py; ADR 0054)
    second_factor_roles: Annotated[list[Role], NoDecode] = Field(
        default_factory=list,
        description="Roles that must sign in with a second factor, comma-separated "
        "(PROVIDER,ADMIN): one without it enrols right after its password.",
    )
    second_factor_challenge_ttl: int = Field(
        300, ge=30, le=900, description="Seconds a password sign-in may wait for its code."
    )
    totp_issuer: str = Field("Fixup", min_length=1, description="Named in authenticator apps.")
    # --- a person's data export (services/users/export.py; ADR 0059)
    export_rate: float = Field(
        1 / 60, gt=0, description="Data exports/s of one person, whoever asks (one a minute)."
    )
    export_burst: int = Field(3, ge=1)
    export_max_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024,
        le=256 * 1024 * 1024,
        description="Bytes of one export document; more: 413.",
    )
    # --- mail (lib/mail): logged unless SMTP_HOST is set
    smtp_host: str = ""
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = "Fixup <no-reply@fixup.test>"
    smtp_timeout: float = Field(10.0, gt=0)
    mail_relay_interval: float = Field(5.0, gt=0, description="Outbox poll period (s).")
    mail_retry_max: float = Field(300.0, gt=0, description="Longest wait between attempts.")
    # --- pictures (services/users/pictures.py): stored where ErasureSettings' storage says
    picture_workers: int = Field(2, ge=1, description="Threads that re-encode uploads.")
    picture_queue: int = Field(4, ge=0, description="Uploads waiting for one; more: 503.")

    @field_validator("webauthn_origins", "second_factor_roles", mode="before")
    @classmethod
    def _users_comma_lists(cls, value: Any) -> Any:
        """A comma-separated environment value, as lib.config's lists (a name of its own:
        the same name would replace the base class's validator)."""
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value
