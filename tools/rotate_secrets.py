"""Rotate the users service's symmetric secrets with an overlap (ADR 0036; runbook in
docs/operations.md, "Rotating the picture-URL and encryption keys").

    python -m tools.rotate_secrets status
    python -m tools.rotate_secrets stage storage|encryption     # a new key, accepted only
    python -m tools.rotate_secrets promote storage|encryption   # it signs/encrypts now
    python -m tools.rotate_secrets reencrypt [--batch N]        # values onto the current key
    python -m tools.rotate_secrets retire storage|encryption    # previous keys dropped

Each secret is a keyring file (`STORAGE_SIGNING_KEYS_FILE`, `ENCRYPTION_KEYS_FILE`; by
default var/keys/storage.keys and var/keys/encryption.keys, mode 0600) that the service
reads at start; after each step the replicas are restarted (a rollout) before the next one.
The first `stage` turns the single-key setting (STORAGE_SIGNING_KEY / ENCRYPTION_KEY, as
set for the users service) into the ring's `k0`, the key of values from before keyrings.

Mail links need no step: they are random single-use tokens whose SHA-256 is stored, with
no server secret behind them (ADR 0036).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
from cryptography.exceptions import InvalidTag
from pydantic import ValidationError

from lib.config import PrefixedEnvSource
from lib.crypto import KEY_BYTES, FieldCipher, prefix, sealed_kid
from lib.keyring import LEGACY_KID, Key, Keyring, new_kid, new_secret, parse_keyring
from services.users.settings import UsersSettings
from tools.dbadmin import psycopg_dsn
from tools.locks import database_lock

KEYS_DIR = Path("var/keys")
LOCK = "reencrypt"


@dataclass(frozen=True)
class Secret:
    name: str
    env: str  # the keyring file's variable
    default_file: str
    exact_bytes: int | None


SECRETS = {
    "storage": Secret("storage", "STORAGE_SIGNING_KEYS_FILE", "storage.keys", None),
    "encryption": Secret("encryption", "ENCRYPTION_KEYS_FILE", "encryption.keys", KEY_BYTES),
}


def service_env() -> dict[str, str]:
    """The variables as the users service reads them (environment over `.env`)."""
    return PrefixedEnvSource(UsersSettings, "users", Path(".env")).env


def keyring_path(secret: Secret) -> Path:
    """Where the users service reads the ring: its variable, else var/keys/."""
    env = service_env()
    chosen = env.get(f"USERS_{secret.env}") or env.get(secret.env)
    return Path(chosen or KEYS_DIR / secret.default_file)


def users_settings() -> UsersSettings:
    """The users service's settings, less a ring file that does not exist yet (the one the
    first `stage` writes; the service itself refuses to start without it)."""
    source = PrefixedEnvSource(UsersSettings, "users", Path(".env"))
    for secret in SECRETS.values():
        for name in (secret.env, f"USERS_{secret.env}"):
            if name in source.env and not Path(source.env[name]).is_file():
                del source.env[name]
    values = source()
    if source.file_errors:
        raise SystemExit("\n".join(f"config: {line}" for line in source.file_errors))
    try:
        return UsersSettings.model_validate({**values, "service": "users"})
    except ValidationError as exc:  # each line names the setting, never its value
        raise SystemExit("\n".join(f"config: {e['msg']}" for e in exc.errors())) from None


def read_ring(secret: Secret, settings: UsersSettings) -> Keyring | None:
    """The keyring file's ring, else the single-key setting as `k0`, else None."""
    path = keyring_path(secret)
    if path.is_file():
        return parse_keyring(path.read_text(), exact_bytes=secret.exact_bytes)
    if secret.name == "encryption":
        return settings.encryption_keyring()
    return settings.storage_keyring()


def write_ring(secret: Secret, ring: Keyring) -> Path:
    path = keyring_path(secret)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(ring.text())
    os.replace(temporary, path)  # a reader sees the old ring or the new one, never half
    return path


def stage(ring: Keyring | None, secret: Secret) -> Keyring:
    """A new `next` key beside the ring (a new ring of it alone, current, when none)."""
    size = secret.exact_bytes or 32
    if ring is None:
        return Keyring((Key("k1", "current", new_secret(size)),))
    if any(k.state == "next" for k in ring.keys):
        raise SystemExit(f"{secret.name}: a next key is already staged (promote it first)")
    return Keyring((*ring.keys, Key(new_kid(ring), "next", new_secret(size))))


def promote(ring: Keyring, secret: Secret) -> Keyring:
    """The `next` key becomes current; the current one previous (still accepted)."""
    if not any(k.state == "next" for k in ring.keys):
        raise SystemExit(f"{secret.name}: no next key is staged (stage one first)")
    moved = {"next": "current", "current": "previous"}
    return Keyring(tuple(replace(k, state=moved.get(k.state, k.state)) for k in ring.keys))  # type: ignore[arg-type]


def retire(ring: Keyring, secret: Secret, still_used: Counter[str]) -> Keyring:
    """The ring without its `previous` keys; refused while a stored value needs one."""
    previous = [k.kid for k in ring.keys if k.state == "previous"]
    needed = [kid for kid in previous if still_used.get(kid)]
    if needed:
        counts = ", ".join(f"{kid}: {still_used[kid]}" for kid in needed)
        raise SystemExit(f"{secret.name}: values still sealed under {counts} (run reencrypt)")
    return Keyring(tuple(k for k in ring.keys if k.state != "previous"))


def sealed_counts(dsn: str) -> Counter[str]:
    """How many personal id numbers each key id seals (`k0`: sealed before keyrings)."""
    with psycopg.connect(psycopg_dsn(dsn)) as conn:
        rows = conn.execute(
            "SELECT substring(personal_id_encrypted FROM 1 FOR 16) FROM provider_details"
        ).fetchall()
    return Counter(sealed_kid(bytes(row[0])) or LEGACY_KID for row in rows)


def reencrypt(dsn: str, cipher: FieldCipher, *, batch: int, max_batches: int | None) -> int:
    """Re-seal every personal id number not under the current key, `batch` rows a
    transaction, in user id order. Rows already on the current key are never selected, so
    a run that was killed resumes where it stopped and a second run changes nothing. Each
    batch locks its rows (FOR UPDATE) and a value is rewritten only with what decrypts, so
    the service reads every value throughout. Returns how many values were re-sealed."""
    current = prefix(cipher.keys.current.kid)
    done, batches, after = 0, 0, None
    with database_lock(dsn, LOCK), psycopg.connect(psycopg_dsn(dsn)) as conn:
        while max_batches is None or batches < max_batches:
            with conn.transaction():
                rows = conn.execute(
                    "SELECT user_id, personal_id_encrypted FROM provider_details"
                    " WHERE (%(after)s::uuid IS NULL OR user_id > %(after)s::uuid)"
                    "   AND substring(personal_id_encrypted FROM 1 FOR %(n)s) <> %(prefix)s"
                    " ORDER BY user_id LIMIT %(batch)s FOR UPDATE",
                    {"after": after, "n": len(current), "prefix": current, "batch": batch},
                ).fetchall()
                for user_id, sealed in rows:
                    try:
                        plain = cipher.decrypt(bytes(sealed), associated=user_id.bytes)
                    except InvalidTag:  # this batch rolls back; nothing is half-done
                        raise SystemExit(
                            f"provider_details {user_id}: no key of the ring opens it "
                            f"(key id {sealed_kid(bytes(sealed)) or LEGACY_KID}); stopped"
                        ) from None
                    conn.execute(
                        "UPDATE provider_details SET personal_id_encrypted = %s WHERE user_id = %s",
                        (cipher.encrypt(plain, associated=user_id.bytes), user_id),
                    )
            if not rows:
                break
            done, batches, after = done + len(rows), batches + 1, rows[-1][0]
    return done


def describe(ring: Keyring | None) -> str:
    if ring is None:
        return "not configured"
    return ", ".join(f"{k.kid} {k.state}" for k in ring.keys)  # never the secret


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.rotate_secrets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="each keyring's ids and states, values per key id")
    for name in ("stage", "promote", "retire"):
        step = commands.add_parser(name)
        step.add_argument("secret", choices=sorted(SECRETS))
    again = commands.add_parser("reencrypt", help="personal id numbers onto the current key")
    again.add_argument("--batch", type=int, default=500, help="rows a transaction")
    again.add_argument("--max-batches", type=int, default=None, help="stop after so many")
    args = parser.parse_args(argv)
    settings = users_settings()
    dsn = settings.database_url
    if args.command == "status":
        for secret in SECRETS.values():
            print(
                f"{secret.name} ({keyring_path(secret)}): {describe(read_ring(secret, settings))}"
            )
        counts = sealed_counts(dsn)
        print("encrypted values by key id:", dict(sorted(counts.items())) or "none")
        return 0
    if args.command == "reencrypt":
        ring = read_ring(SECRETS["encryption"], settings)
        if ring is None:
            raise SystemExit("encryption: no key configured (ENCRYPTION_KEYS or ENCRYPTION_KEY)")
        count = reencrypt(dsn, FieldCipher(ring), batch=args.batch, max_batches=args.max_batches)
        print(f"re-encrypted {count} values under {ring.current.kid}")
        return 0
    secret = SECRETS[args.secret]
    ring = read_ring(secret, settings)
    if args.command == "stage":
        new = stage(ring, secret)
    elif ring is None:
        raise SystemExit(f"{secret.name}: no keyring to {args.command} (stage first)")
    elif args.command == "promote":
        new = promote(ring, secret)
    else:
        used = sealed_counts(dsn) if secret.name == "encryption" else Counter[str]()
        new = retire(ring, secret, used)
    path = write_ring(secret, new)
    print(f"{secret.name}: {describe(new)} -> {path}; restart the users replicas (a rollout)")
    print(f"the service reads it with {secret.env}={path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
