"""What earlier versions wrote, put in today's form once: `make rotate secret=NAME
step=migrate` (ADR 0046; running it again changes nothing).

- The signing-key directory (`keys.json` + `<kid>.pem` / `<kid>.pub.pem`, states next /
  signing / retired) becomes `keyring.json` beside it (next / current / retired, a retired
  pair without its private half); the old files are removed once the keyring reads back.
- A `kid:state:base64` ring file (states next / current / previous) becomes a keyring in
  the same file (previous: retired).
- (encryption) A stored value sealed before keyrings (`nonce + ciphertext + tag`, no key
  id) is put in the envelope under `k0` (lib/crypto.py): each one is opened first, so a
  value is rewritten only when it is what it seems. The service of the release before
  reads both forms, so this runs before the rollout that brings the new one.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from cryptography.exceptions import InvalidTag
from jwt.algorithms import OKPAlgorithm

from lib.auth.pem import load_private_key, load_public_key
from lib.crypto import FieldCipher, open_bare, prefix
from lib.keyring import (
    LEGACY_KID,
    Key,
    Keyring,
    State,
    ed25519,
    read_keyring,
    symmetric,
    write_keyring,
)
from tools.local.dbadmin import psycopg_dsn
from tools.local.locks import database_lock
from tools.secrets.sealed import LOCK

if TYPE_CHECKING:
    from tools.secrets.rotate import Secret, Settings

MANIFEST = "keys.json"
STATES: dict[str, State] = {"signing": "current", "current": "current", "next": "next"}


def from_key_directory(directory: Path) -> Keyring:
    """The keyring of a key directory; ValueError naming the file and what is wrong."""
    keys: list[Key] = []
    for row in json.loads((directory / MANIFEST).read_text())["keys"]:
        kid, state = row["kid"], row["state"]
        if state == "retired":
            public = load_public_key((directory / f"{kid}.pub.pem").read_text())
            jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
            key = Key(kid, "retired", jwk, row["created_at"], row["retired_at"])
        else:
            private = load_private_key((directory / f"{kid}.pem").read_text())
            key = ed25519(private, STATES[state], row["created_at"])
        if key.kid != kid:
            raise ValueError(f"{directory}: key {kid} is not the key of its files")
        keys.append(key)
    return Keyring(tuple(keys))


def from_lines(text: str, now: float) -> Keyring:
    """The keyring of `kid:state:base64` entries (comma- or whitespace-separated)."""
    keys: list[Key] = []
    for position, entry in enumerate(re.split(r"[\s,]+", text.strip()), start=1):
        try:
            kid, state, encoded = entry.split(":")
            secret = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error):
            raise ValueError(f"entry {position} is not kid:state:base64-secret") from None
        if state == "previous":
            keys.append(replace(symmetric(kid, secret, "retired", now), retired_at=now))
        else:
            keys.append(symmetric(kid, secret, STATES.get(state, "next"), now))
    return Keyring(tuple(keys))


def migrate(secret: Secret, path: Path, settings: Settings) -> str:
    done = []
    if secret.size is None and not path.exists() and (path.parent / MANIFEST).exists():
        old = [path.parent / MANIFEST, *path.parent.glob("*.pem")]
        write_keyring(path, from_key_directory(path.parent))
        read_keyring(path)
        for file in old:
            file.unlink()
        done.append(f"the key directory {path.parent} -> {path}")
    elif path.is_file() and not path.read_text().lstrip().startswith("{"):
        write_keyring(path, from_lines(path.read_text(), time.time()))
        read_keyring(path, **secret.sizes())
        done.append(f"{path}: kid:state:base64 lines -> a keyring")
    if secret.stored:
        ring = read_keyring(path, **secret.sizes()) if path.exists() else secret.single(settings)
        if ring is not None:
            count = envelope(settings.database_url, ring)
            done.append(f"{count} stored values put in the envelope under {LEGACY_KID}")
    return f"{secret.name}: " + ("; ".join(done) or "nothing to migrate")


def envelope(dsn: str, ring: Keyring) -> int:
    """Every personal id number not yet in the envelope, put in it under `k0` (its body is
    the same bytes: the value is opened, never sealed again). How many were."""
    cipher, legacy = FieldCipher(ring), ring.get(LEGACY_KID)
    done = 0
    with (
        database_lock(dsn, LOCK),
        psycopg.connect(psycopg_dsn(dsn)) as conn,
        conn.transaction(),
    ):
        rows = conn.execute(
            "SELECT user_id, personal_id_encrypted FROM provider_details FOR UPDATE"
        ).fetchall()
        for user_id, stored in rows:
            value = bytes(stored)
            try:
                cipher.decrypt(value, associated=user_id.bytes)
                continue  # an envelope already
            except InvalidTag:
                pass
            try:
                if legacy is None:
                    raise InvalidTag()
                open_bare(legacy, value, associated=user_id.bytes)
            except InvalidTag:  # the whole migration rolls back
                raise SystemExit(
                    f"provider_details {user_id}: opens neither as an envelope nor with "
                    f"{LEGACY_KID}; stopped"
                ) from None
            conn.execute(
                "UPDATE provider_details SET personal_id_encrypted = %s WHERE user_id = %s",
                (prefix(LEGACY_KID) + value, user_id),
            )
            done += 1
    return done
