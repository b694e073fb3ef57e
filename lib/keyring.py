"""Keyrings: every secret that rotates, in one file format and one state machine (ADR 0046).

A keyring is a JWK Set (RFC 7517) in a file, each key carrying three members of ours beside
its JWK ones: `state`, `created_at` and `retired_at` (Unix seconds). A key goes
`next` → `current` → `retired` → dropped (gone from the file):

- `next`: staged, accepted (verifies, decrypts, is published), never used to produce;
- `current`: exactly one, signs or encrypts;
- `retired`: stopped producing at `retired_at`, accepted until what it produced has
  expired or been sealed again, then dropped.

A symmetric key is `kty: oct` and its id `k<n>` (short: a picture URL and a ciphertext
carry it); an Ed25519 pair is `kty: OKP` with its private half, and its id the RFC 7638
thumbprint (what tokens name, lib/auth/jwks.py). JWKs are read and written by PyJWT's
algorithms. `tools/secrets/rotate.py` writes keyrings (`make rotate secret=NAME
step=STEP`); a process reads one at start (a setting) or again every interval
(`KeyringFile`). A value produced before keyrings (a picture URL without `kid`) is checked
with the key `LEGACY_KID`, which is what a single-key setting becomes.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, get_args

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from joserfc.jwk import thumbprint
from jwt.algorithms import HMACAlgorithm, OKPAlgorithm
from jwt.exceptions import InvalidKeyError

log = structlog.get_logger("fixup.keyring")

State = Literal["next", "current", "retired"]
STATES: tuple[str, ...] = get_args(State)
LEGACY_KID = "k0"
KID_PATTERN = r"^[a-z0-9]{1,8}$"  # a symmetric key's id
_KID = re.compile(KID_PATTERN)
_THUMBPRINT = re.compile(r"[A-Za-z0-9_-]{43}")  # a pair's
OURS = ("state", "created_at", "retired_at")


def key_id(public: Ed25519PublicKey) -> str:
    """A pair's id: the RFC 7638 thumbprint of its public JWK (joserfc's, ADR 0046)."""
    return thumbprint(OKPAlgorithm.to_jwk(public, as_dict=True))


@dataclass(frozen=True)
class Key:
    kid: str
    state: State
    jwk: dict[str, Any] = field(repr=False)  # never printed: it holds the secret
    created_at: float = 0.0
    retired_at: float | None = None

    @cached_property
    def secret(self) -> bytes:
        """A symmetric key's bytes."""
        return HMACAlgorithm.from_jwk(self.jwk)

    @cached_property
    def private(self) -> Ed25519PrivateKey:
        """A pair's private half (ValueError: a retired pair keeps only its public one)."""
        key = OKPAlgorithm.from_jwk(self.jwk)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"key {self.kid}: no private half")
        return key

    @cached_property
    def public(self) -> Ed25519PublicKey:
        key = OKPAlgorithm.from_jwk(self.jwk)
        key = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"key {self.kid}: not an Ed25519 key")
        return key


def symmetric(kid: str, secret: bytes, state: State = "current", now: float = 0.0) -> Key:
    return Key(kid, state, HMACAlgorithm.to_jwk(secret, as_dict=True), now)


def ed25519(private: Ed25519PrivateKey, state: State = "current", now: float = 0.0) -> Key:
    """A key pair, its id its thumbprint."""
    jwk = OKPAlgorithm.to_jwk(private, as_dict=True)
    return Key(key_id(private.public_key()), state, jwk, now)


@dataclass(frozen=True)
class Keyring:
    """Keys in their file order; exactly one is `current`."""

    keys: tuple[Key, ...]

    @classmethod
    def single(cls, secret: bytes) -> Keyring:
        """What a single-key setting means: that key, current, under the legacy id."""
        return cls((symmetric(LEGACY_KID, secret),))

    @property
    def current(self) -> Key:
        return next(key for key in self.keys if key.state == "current")

    def key(self, kid: str) -> Key | None:
        return next((key for key in self.keys if key.kid == kid), None)

    def get(self, kid: str | None) -> bytes | None:
        """The secret of `kid` (None: a value from before keyrings, the legacy key); None
        when the keyring does not hold it (unknown or dropped)."""
        key = self.key(LEGACY_KID if kid is None else kid)
        return None if key is None else key.secret

    def text(self) -> str:
        """The file's text (what `parse_keyring` reads back)."""
        rows = [
            {"kid": k.kid, **k.jwk, "state": k.state, "created_at": k.created_at}
            | ({} if k.retired_at is None else {"retired_at": k.retired_at})
            for k in self.keys
        ]
        return json.dumps({"keys": rows}, indent=2) + "\n"


def parse_keyring(text: str, *, exact_bytes: int | None = None, min_bytes: int = 16) -> Keyring:
    """The keyring in `text`; ValueError naming the key (never its secret) otherwise.
    `exact_bytes` / `min_bytes`: the size of a symmetric key."""
    try:
        document = json.loads(text)
    except ValueError:
        raise ValueError(
            "not a keyring: not JSON (`make rotate secret=NAME step=migrate` converts one of"
            " an earlier version)"
        ) from None
    rows = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(rows, list):
        raise ValueError("not a keyring: no 'keys' array")
    keys = [_key(row, position, exact_bytes, min_bytes) for position, row in enumerate(rows, 1)]
    kids = [k.kid for k in keys]
    for kid in kids:
        if kids.count(kid) > 1:
            raise ValueError(f"key {kid} appears twice")
    current = [k.kid for k in keys if k.state == "current"]
    if len(current) != 1:
        raise ValueError(f"a keyring needs exactly one current key, found {len(current)}")
    return Keyring(tuple(keys))


def _key(row: object, position: int, exact_bytes: int | None, min_bytes: int) -> Key:
    if not isinstance(row, dict):
        raise ValueError(f"key {position} is not an object")
    kid, state = row.get("kid"), row.get("state")
    if not isinstance(kid, str) or not (_KID.match(kid) or _THUMBPRINT.fullmatch(kid)):
        raise ValueError(f"key {position}: its id must be 1-8 of [a-z0-9] or a thumbprint")
    if state not in STATES:
        raise ValueError(f"key {kid}: state must be one of {', '.join(STATES)}")
    created, retired = row.get("created_at", 0.0), row.get("retired_at")
    if not isinstance(created, int | float) or not isinstance(retired, int | float | None):
        raise ValueError(f"key {kid}: created_at/retired_at must be Unix seconds")
    jwk = {name: value for name, value in row.items() if name not in OURS}
    key = Key(kid, state, jwk, float(created), None if retired is None else float(retired))
    try:
        if jwk.get("kty") == "oct":
            size = len(key.secret)
            if exact_bytes is not None and size != exact_bytes:
                raise ValueError(f"key {kid}: must decode to {exact_bytes} bytes, got {size}")
            if size < min_bytes:
                raise ValueError(f"key {kid}: must decode to at least {min_bytes} bytes")
        elif jwk.get("kty") == "OKP" and ("d" in jwk or state == "retired"):
            if key_id(key.public) != kid:
                raise ValueError(f"key {kid}: its id is not its thumbprint")
        else:
            raise ValueError(f"key {kid}: not a symmetric key (oct) or an Ed25519 pair (OKP)")
    except (InvalidKeyError, AssertionError, TypeError, KeyError):
        raise ValueError(f"key {kid}: not a valid {jwk.get('kty')} key") from None
    return key


def read_keyring(path: Path, **sizes: int | None) -> Keyring:
    """The keyring of a file; ValueError naming the file and what is wrong."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"{path}: unreadable ({exc.strerror or exc.__class__.__name__})") from None
    try:
        return parse_keyring(text, **sizes)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def write_keyring(path: Path, ring: Keyring) -> Path:
    """Replace the file in one rename (mode 0600): a reader sees the old ring or the new one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(ring.text())
    os.replace(temporary, path)
    return path


def new_kid(ring: Keyring) -> str:
    """An id no key of `ring` has: k<n+1> after the highest k<n>."""
    numbers = [int(k.kid[1:]) for k in ring.keys if re.fullmatch(r"k\d{1,7}", k.kid)]
    return f"k{max(numbers, default=0) + 1}"


def promoted(ring: Keyring, now: float) -> Keyring:
    """The `next` key current; the current one retired at `now`."""

    def moved(key: Key) -> Key:
        if key.state == "current":  # a retired pair never signs again: its private half goes
            jwk = {name: value for name, value in key.jwk.items() if name != "d"}
            return replace(key, state="retired", retired_at=now, jwk=jwk)
        return replace(key, state="current") if key.state == "next" else key

    return Keyring(tuple(moved(key) for key in ring.keys))


class KeyringFile:
    """A keyring file read again when `reload_interval` seconds have passed since the last
    read (on the next use: no task to run, nothing read while nobody asks). A read that
    fails after the first keeps the last good ring (a Secret being replaced is read again
    at the next interval), and says so in the log."""

    def __init__(
        self,
        path: Path,
        *,
        reload_interval: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._interval = reload_interval
        self._monotonic = monotonic
        self._ring = read_keyring(path)  # a bad file: no start
        self._read_at = monotonic()

    def current(self) -> Keyring:
        if self._monotonic() - self._read_at >= self._interval:
            self.reload()
        return self._ring

    def reload(self) -> bool:
        """Read the file now; False (the last good ring kept, logged) when it fails."""
        self._read_at = self._monotonic()
        try:
            self._ring = read_keyring(self.path)
        except ValueError as exc:
            log.warning("keyring unreadable, keeping the last keys", error=str(exc))
            return False
        return True

    def since_read(self) -> float:
        return self._monotonic() - self._read_at
