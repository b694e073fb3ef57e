"""Settings of the users service (imported before any metric exists)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator

from lib.auth.passwords import ARGON2_DEFAULTS, Priority, default_workers
from lib.clients.settings import DepartmentsClientSettings, PointsClientSettings
from lib.config import ServiceSettings
from lib.crypto import encryption_keyring
from lib.keyring import Keyring, parse_keyring

SERVICE = "users"


class UsersSettings(ServiceSettings, DepartmentsClientSettings, PointsClientSettings):
    registry_name: ClassVar[str] = SERVICE  # port and database: lib/registry.py
    db_pool_reset: bool = False  # no handler changes session state (ADR 0005)
    # --- auth flows (registration.py, sessions.py, passwords.py; ADR 0010)
    encryption_key: SecretStr = Field(
        SecretStr(""), description="base64 of 32 bytes: AES-GCM key of personal id numbers."
    )
    encryption_key_file: str = Field("", description="ENCRYPTION_KEY read from a file.")
    encryption_keys: SecretStr = Field(
        SecretStr(""),
        description="The ENCRYPTION_KEY keyring, kid:state:base64 entries (ADR 0036); wins "
        "over ENCRYPTION_KEY, which is the key `k0` of values sealed before keyrings.",
    )
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
        "idle",
        description="Hashing threads: idle (SCHED_IDLE, only on a core nothing else wants) "
        "or nice (nice 10: a share even on a host busy with other work). ADR 0010.",
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
    verify_token_ttl: int = Field(86_400, ge=60)
    reset_token_ttl: int = Field(3_600, ge=60)
    cookie_secure: bool = True
    # --- mail (lib/mail): logged unless SMTP_HOST is set
    smtp_host: str = ""
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = "Fixup <no-reply@fixup.test>"
    smtp_timeout: float = Field(10.0, gt=0)
    mail_relay_interval: float = Field(5.0, gt=0, description="Outbox poll period (s).")
    mail_retry_max: float = Field(300.0, gt=0, description="Longest wait between attempts.")
    # --- pictures (services/users/pictures.py): picture storage
    storage_dir: str = "var/storage"
    storage_url_ttl: int = Field(3600, ge=1, description="Lifetime of a picture URL (s).")
    storage_signing_key: SecretStr = Field(
        SecretStr("dev-only-storage-signing-key"), description="HMAC key of local picture URLs."
    )
    storage_signing_keys: SecretStr = Field(
        SecretStr(""),
        description="The STORAGE_SIGNING_KEY keyring, kid:state:base64 entries (ADR 0036); "
        "wins over STORAGE_SIGNING_KEY, which is the key `k0` of URLs without `kid`.",
    )
    s3_bucket: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: SecretStr = SecretStr("")
    picture_workers: int = Field(2, ge=1, description="Threads that re-encode uploads.")
    picture_queue: int = Field(4, ge=0, description="Uploads waiting for one; more: 503.")

    @field_validator("encryption_key_file")
    @classmethod
    def _encryption_key_file_exists(cls, value: str) -> str:
        if value and not Path(value).is_file():
            raise ValueError(f"no such file: {value} (make keys writes a development key)")
        return value

    @model_validator(mode="after")
    def _encryption_key_from_file(self) -> UsersSettings:
        """An inline ENCRYPTION_KEY wins; else ENCRYPTION_KEY_FILE's content, if set."""
        if not self.encryption_key.get_secret_value() and self.encryption_key_file:
            key = Path(self.encryption_key_file).read_text().strip()
            self.encryption_key = SecretStr(key)
        return self

    @model_validator(mode="after")
    def _keyrings_parse(self) -> UsersSettings:
        """A malformed key stops the service at start, naming the setting (not the key)."""
        for name, read in (
            ("ENCRYPTION_KEYS / ENCRYPTION_KEY", self.encryption_keyring),
            ("STORAGE_SIGNING_KEYS / STORAGE_SIGNING_KEY", self.storage_keyring),
        ):
            try:
                read()
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return self

    def encryption_keyring(self) -> Keyring | None:
        """The keys of personal id numbers; None: none configured (provider sign-up 503)."""
        return encryption_keyring(
            self.encryption_keys.get_secret_value(), self.encryption_key.get_secret_value()
        )

    def storage_keyring(self) -> Keyring:
        """The keys of local picture URLs."""
        keys = self.storage_signing_keys.get_secret_value()
        if keys.strip():
            return parse_keyring(keys)
        single = self.storage_signing_key.get_secret_value().encode()
        if not single:
            raise ValueError("an empty signing key")
        return Keyring.single(single)
