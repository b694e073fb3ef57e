"""The signing-key directory (ADR 0032): every key users signs or signed with, by state.

Layout of `JWT_KEYS_DIR` (var/keys/jwt in development, a Kubernetes Secret in a cluster):

- `keys.json`: `{"keys": [{"kid", "state", "created_at", "retired_at"}]}`, times in Unix
  seconds; `state` is `next` (published, not signing yet), `signing` (exactly one) or
  `retired` (stopped signing at `retired_at`, published while its tokens may live).
- `<kid>.pub.pem`: each key's public half (every process may read these).
- `<kid>.pem`: each key's private half (mode 0600; only users reads them).

`tools/rotate_keys.py` writes the directory (stage, promote, drop); processes only read it,
again every `JWT_KEYS_RELOAD_INTERVAL` (`KeyDirectory`), so a rotation needs no restart.
A read that fails after the first keeps the last good set (a Secret being replaced file by
file is read again at the next interval), and says so in the log.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lib.auth.jwks import is_key_id, key_id
from lib.auth.pem import load_private_key, load_public_key

log = structlog.get_logger("fixup.auth.keys")

MANIFEST = "keys.json"
State = Literal["next", "signing", "retired"]
STATES: tuple[State, ...] = ("next", "signing", "retired")
K = TypeVar("K")


def private_name(kid: str) -> str:
    return f"{kid}.pem"


def public_name(kid: str) -> str:
    return f"{kid}.pub.pem"


@dataclass(frozen=True, slots=True)
class KeyEntry:
    kid: str
    state: State
    public: Ed25519PublicKey
    private: Ed25519PrivateKey | None
    created_at: float
    retired_at: float | None

    def published(self, now: float, window: float) -> bool:
        """next and signing always; retired while a token it signed may still be valid."""
        if self.state != "retired":
            return True
        return self.retired_at is not None and now < self.retired_at + window


@dataclass(frozen=True, slots=True)
class KeySet:
    entries: tuple[KeyEntry, ...]

    def signing(self) -> KeyEntry | None:
        return next((e for e in self.entries if e.state == "signing"), None)

    def staged(self) -> KeyEntry | None:
        return next((e for e in self.entries if e.state == "next"), None)

    def published(self, now: float, window: float) -> list[KeyEntry]:
        return [e for e in self.entries if e.published(now, window)]


def read_key_set(directory: Path, *, private: bool) -> KeySet:
    """The directory's keys (with their private halves when `private`); ValueError naming
    the file and what is wrong."""
    manifest = directory / MANIFEST
    try:
        document = json.loads(manifest.read_text())
    except FileNotFoundError:
        raise ValueError(
            f"{manifest}: missing (make keys writes a development key directory)"
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{manifest}: unreadable ({exc.__class__.__name__})") from None
    rows = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(rows, list):
        raise ValueError(f"{manifest}: no 'keys' array")
    entries = tuple(_entry(directory, row, private) for row in rows)
    kids = [e.kid for e in entries]
    if len(set(kids)) != len(kids):
        raise ValueError(f"{manifest}: a kid appears twice")
    for state, most in (("signing", 1), ("next", 1)):
        if sum(e.state == state for e in entries) > most:
            raise ValueError(f"{manifest}: more than one {state} key")
    return KeySet(entries)


def _entry(directory: Path, row: object, private: bool) -> KeyEntry:
    where = directory / MANIFEST
    if not isinstance(row, dict):
        raise ValueError(f"{where}: an entry is not an object")
    kid, state = row.get("kid"), row.get("state")
    if not is_key_id(kid):
        raise ValueError(f"{where}: {kid!r} is not a key id (a JWK thumbprint)")
    assert isinstance(kid, str)
    if state not in STATES:
        raise ValueError(f"{where}: key {kid} has state {state!r}, not one of {STATES}")
    created, retired = row.get("created_at"), row.get("retired_at")
    if not isinstance(created, int | float) or not (
        retired is None or isinstance(retired, int | float)
    ):
        raise ValueError(f"{where}: key {kid}: created_at/retired_at must be Unix seconds")
    if state == "retired" and retired is None:
        raise ValueError(f"{where}: retired key {kid} has no retired_at")
    public = _read(directory / public_name(kid), load_public_key)
    if key_id(public) != kid:
        raise ValueError(f"{directory / public_name(kid)}: its thumbprint is not {kid}")
    secret = None
    if private and state != "retired":  # a retired key never signs again
        secret = _read(directory / private_name(kid), load_private_key)
        if key_id(secret.public_key()) != kid:
            raise ValueError(f"{directory / private_name(kid)}: not the private half of {kid}")
    return KeyEntry(kid, state, public, secret, float(created), _float(retired))


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _read(path: Path, load: Callable[[str], K]) -> K:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"{path}: unreadable ({exc.strerror or exc.__class__.__name__})") from None
    try:
        return load(text)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


class KeyDirectory:
    """The key directory, read again when `reload_interval` seconds have passed since the
    last read (on the next use: no task to run, nothing read while nobody asks)."""

    def __init__(
        self,
        directory: Path,
        *,
        private: bool,
        reload_interval: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = directory
        self._private = private
        self._interval = reload_interval
        self._monotonic = monotonic
        self._keys = read_key_set(directory, private=private)  # a bad directory: no start
        self._read_at = monotonic()

    def current(self) -> KeySet:
        if self._monotonic() - self._read_at >= self._interval:
            self.reload()
        return self._keys

    def reload(self) -> bool:
        """Read the directory now; False (the last good set kept, logged) when it fails."""
        self._read_at = self._monotonic()
        try:
            self._keys = read_key_set(self.directory, private=self._private)
        except ValueError as exc:
            log.warning("key directory unreadable, keeping the last keys", error=str(exc))
            return False
        return True

    def since_read(self) -> float:
        return self._monotonic() - self._read_at
