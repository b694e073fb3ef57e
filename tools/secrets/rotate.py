"""Rotate a secret, one step at a time: `python -m tools.secrets.rotate SECRET STEP`
(`make rotate secret=NAME step=STEP`; docs/operations.md "Rotating a secret", ADR 0046).

Every secret is a keyring file (lib/keyring.py) declared once in `SECRETS`, and goes
through the same steps (status, stage, promote, reencrypt, drop, migrate), each refused
with one line when it is too early or out of order. The command holds
var/locks/rotate-<secret>.lock while it writes; a file is replaced in one rename.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lib.auth.keysources import RING
from lib.auth.pem import load_private_key
from lib.config import ServiceSettings, load_settings
from lib.crypto import KEY_BYTES, FieldCipher
from lib.keyring import Keyring, ed25519, new_kid, promoted, read_keyring, symmetric, write_keyring
from lib.secret_settings import SecretSettings
from lib.settings_sources import environment
from tools.local.locks import LockBusy, file_lock
from tools.secrets import legacy, sealed

STEPS = ("status", "stage", "promote", "reencrypt", "drop", "migrate")


class Settings(ServiceSettings, SecretSettings):
    """What the users service reads of its secrets (environment over `.env`)."""

    registry_name: ClassVar[str] = "users"


class Refused(RuntimeError):
    """A step that may not run now; the message is the one line to print."""


@dataclass(frozen=True)
class Secret:
    name: str
    variable: str  # the setting naming its file (the signing key's: a directory)
    default: str  # its file when the setting is unset
    size: int | None  # a symmetric key's bytes; None: an Ed25519 pair
    promote_after: Callable[[Settings], float] = lambda _: 0.0
    drop_after: Callable[[Settings], float] = lambda _: 0.0
    stored: bool = False  # values sealed under its keys are stored (count, reencrypt)

    def path(self, env: dict[str, str]) -> Path:
        chosen = env.get(f"USERS_{self.variable}") or env.get(self.variable) or self.default
        return Path(chosen) / RING if self.size is None else Path(chosen)

    def single(self, settings: Settings) -> Keyring | None:
        """The ring the service uses while the secret has no file."""
        if self.name == "storage":
            return settings.storage_keyring()
        if self.name == "encryption":
            return settings.encryption_keyring()
        pem = settings.private_key_pem()
        return Keyring((ed25519(load_private_key(pem), now=time.time()),)) if pem else None

    def sizes(self) -> dict[str, int | None]:
        """What `read_keyring` checks of its symmetric keys."""
        return {"exact_bytes": self.size if self.stored else None}


SECRETS = {
    secret.name: secret
    for secret in (
        Secret(
            "jwt",
            "JWT_KEYS_DIR",
            "var/keys/jwt",
            None,
            promote_after=lambda s: s.jwt_keys_reload_interval + s.jwks_refresh_interval,
            drop_after=lambda s: s.key_retirement_window(),
        ),
        Secret("storage", "STORAGE_SIGNING_KEYS_FILE", "var/keys/storage.keys", 32),
        Secret(
            "encryption", "ENCRYPTION_KEYS_FILE", "var/keys/encryption.keys", KEY_BYTES, stored=True
        ),
    )
}


def stage(ring: Keyring | None, secret: Secret, now: float) -> Keyring:
    """A new `next` key beside the ring (a new ring of it alone, current, when none)."""
    if ring is not None and any(k.state == "next" for k in ring.keys):
        raise Refused(f"{secret.name}: a next key is already staged (promote it first)")
    if secret.size is None:
        key = ed25519(Ed25519PrivateKey.generate(), "next", now)
    else:
        key = symmetric(new_kid(ring) if ring else "k1", os.urandom(secret.size), "next", now)
    if ring is None:
        return Keyring((replace(key, state="current"),))
    return Keyring((*ring.keys, key))


def promote(ring: Keyring, secret: Secret, now: float, wait: float) -> Keyring:
    """The `next` key current, the current one retired; refused until staged `wait` ago."""
    staged = next((k for k in ring.keys if k.state == "next"), None)
    if staged is None:
        raise Refused(f"{secret.name}: no next key is staged (stage one first)")
    if now < staged.created_at + wait:
        raise Refused(
            f"{secret.name}: key {staged.kid} was staged {now - staged.created_at:.0f} s ago; "
            f"promote it after {wait:g} s (in {staged.created_at + wait - now:.0f} s) so "
            "every verifier has it"
        )
    return promoted(ring, now)


def drop(ring: Keyring, secret: Secret, now: float, wait: float, used: Counter[str]) -> Keyring:
    """The ring without its retired keys; refused before `wait` after they retired, and
    while a stored value names one (`used`: values per key id)."""
    retired = [k for k in ring.keys if k.state == "retired"]
    if not retired:
        raise Refused(f"{secret.name}: no retired key to drop")
    early = [k for k in retired if now < (k.retired_at or 0.0) + wait]
    if early:
        left = (early[0].retired_at or 0.0) + wait - now
        raise Refused(
            f"{secret.name}: key {early[0].kid} may still verify what it produced for "
            f"{left:.0f} s ({wait:g} s after it retired); drop it after"
        )
    needed = [k.kid for k in retired if used.get(k.kid)]
    if needed:
        counts = ", ".join(f"{kid}: {used[kid]}" for kid in needed)
        raise Refused(f"{secret.name}: values still sealed under {counts} (run reencrypt)")
    return Keyring(tuple(k for k in ring.keys if k.state != "retired"))


def describe(ring: Keyring | None, now: float) -> str:
    if ring is None:
        return "not configured"
    return ", ".join(f"{k.kid} {k.state} ({now - k.created_at:.0f} s old)" for k in ring.keys)


def load() -> tuple[Settings, dict[str, str]]:
    """Users' settings less the keyring files (read here, by `Secret.path`: one may not
    exist yet or be of an earlier version), and its variables."""
    unset = {secret.variable.lower().removesuffix("_file"): "" for secret in SECRETS.values()}
    return load_settings(Settings, "users", overrides=unset), environment(Path(".env"))


def run(
    secret: Secret, step: str, settings: Settings, path: Path, now: float, batch: int = 500
) -> str:
    if step == "migrate":  # before the file is read: it may be of an earlier version
        return legacy.migrate(secret, path, settings)
    ring = read_keyring(path, **secret.sizes()) if path.exists() else None
    dsn = settings.database_url
    if step == "status":
        used = sealed.counts(dsn) if secret.stored else Counter[str]()
        values = f"; stored values by key id: {dict(sorted(used.items()))}" if used else ""
        return f"{secret.name} ({path}): {describe(ring or secret.single(settings), now)}{values}"
    if step == "stage":
        new = stage(ring or secret.single(settings), secret, now)
    elif ring is None:
        raise Refused(f"{secret.name}: no keyring at {path} (stage or migrate first)")
    elif step == "promote":
        new = promote(ring, secret, now, secret.promote_after(settings))
    elif step == "reencrypt":
        if not secret.stored:
            raise Refused(f"{secret.name}: nothing stored is sealed under it")
        count = sealed.reencrypt(dsn, FieldCipher(ring), batch=batch, max_batches=None)
        return f"re-encrypted {count} values under {ring.current.kid}"
    else:
        used = sealed.counts(dsn) if secret.stored else Counter[str]()
        new = drop(ring, secret, now, secret.drop_after(settings), used)
    write_keyring(path, new)
    again = "" if secret.size is None else "; roll the users replicas before the next step"
    return f"{secret.name}: {describe(new, now)} -> {path}{again}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.secrets.rotate", description=__doc__)
    parser.add_argument("secret", choices=sorted(SECRETS))
    parser.add_argument("step", choices=STEPS)
    parser.add_argument("--batch", type=int, default=500, help="reencrypt: rows a transaction")
    args = parser.parse_args(argv)
    secret = SECRETS[args.secret]
    settings, env = load()
    try:
        with file_lock(f"rotate-{secret.name}"):
            print(run(secret, args.step, settings, secret.path(env), time.time(), args.batch))
    except (LockBusy, Refused, ValueError, OSError) as exc:
        print(f"rotate: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
