"""The symmetric secrets' settings, declared once (ADR 0046).

The users service reads them (`UsersSettings` lists this mixin) and so does
`tools/secrets/rotate.py`, which imports no service. A keyring setting (`<NAME>_KEYS`, or
its file `<NAME>_KEYS_FILE`) wins over the single-key one, which is the ring's key `k0`
(lib/keyring.py).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from lib.crypto import KEY_BYTES, legacy_key
from lib.keyring import Keyring, parse_keyring


class SecretSettings(BaseModel):
    encryption_key: SecretStr = Field(
        SecretStr(""), description="base64 of 32 bytes: AES-GCM key of personal id numbers."
    )
    encryption_key_file: str = Field("", description="ENCRYPTION_KEY read from a file.")
    encryption_keys: SecretStr = Field(
        SecretStr(""),
        description="The ENCRYPTION_KEY keyring (lib/keyring.py, ADR 0046); wins over "
        "ENCRYPTION_KEY, which is its key `k0`.",
    )
    storage_url_ttl: int = Field(3600, ge=1, description="Lifetime of a picture URL (s).")
    storage_signing_key: SecretStr = Field(
        SecretStr("dev-only-storage-signing-key"), description="HMAC key of local picture URLs."
    )
    storage_signing_keys: SecretStr = Field(
        SecretStr(""),
        description="The STORAGE_SIGNING_KEY keyring (lib/keyring.py, ADR 0046); wins over "
        "STORAGE_SIGNING_KEY, which is its key `k0` (URLs without `kid`).",
    )

    @field_validator("encryption_key_file")
    @classmethod
    def _encryption_key_file_exists(cls, value: str) -> str:
        if value and not Path(value).is_file():
            raise ValueError(f"no such file: {value} (make keys writes a development key)")
        return value

    @model_validator(mode="after")
    def _encryption_key_from_file(self) -> SecretSettings:
        """An inline ENCRYPTION_KEY wins; else ENCRYPTION_KEY_FILE's content, if set."""
        if not self.encryption_key.get_secret_value() and self.encryption_key_file:
            key = Path(self.encryption_key_file).read_text().strip()
            self.encryption_key = SecretStr(key)
        return self

    @model_validator(mode="after")
    def _keyrings_parse(self) -> SecretSettings:
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
        keys, single = self.encryption_keys.get_secret_value(), self.encryption_key
        if keys.strip():
            return parse_keyring(keys, exact_bytes=KEY_BYTES)
        key = single.get_secret_value()
        return Keyring.single(legacy_key(key)) if key else None

    def storage_keyring(self) -> Keyring:
        """The keys of local picture URLs."""
        keys = self.storage_signing_keys.get_secret_value()
        if keys.strip():
            return parse_keyring(keys)
        single = self.storage_signing_key.get_secret_value().encode()
        if not single:
            raise ValueError("an empty signing key")
        return Keyring.single(single)
