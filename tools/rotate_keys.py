"""Rotate the access-token signing key: `python -m tools.rotate_keys STEP [--dir DIR]`
(`make rotate-keys step=...`; docs/operations.md "Rotating the signing key", ADR 0032).

Steps, each refused with one line when it is too early or out of order:
- `status`: the keys, their states, and the next step allowed now.
- `init`: a directory with one signing key (what `make keys` writes for development);
  `--adopt PEM` starts from the key a deployment signed with until now (no logout).
- `stage`: a new key in state `next`: published in the JWK Set, not signing yet.
- `promote`: the next key signs from now on; the signing one becomes `retired` (published
  while its tokens may live). Refused until the next key has been staged for
  JWT_KEYS_RELOAD_INTERVAL + JWKS_REFRESH_INTERVAL: every replica of users publishes it
  and every verifier has fetched it before the first token it signs arrives.
- `drop`: deletes the retired keys whose tokens have all expired (ACCESS_TOKEN_TTL +
  TOKEN_CLOCK_LEEWAY + JWT_KEYS_RELOAD_INTERVAL after they stopped signing); refused
  before that. Verifiers stop trusting a retired key at that time whether or not it is
  dropped; dropping removes its private half from the disk.

Times are this host's clock (Unix seconds in keys.json), read by users and the verifiers
on their database's clock: keep this host on NTP (the databases' leeway covers the rest).
The command holds the lock var/locks/rotate-keys.lock (tools/locks.py) while it writes;
the manifest is replaced in one rename after the key files are in place, so a process
reading the directory sees the old set or the new one, never half of one, and a copy
killed half-way leaves at most key files no manifest names (never read; the next stage
writes its own).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lib.auth.jwks import key_id
from lib.auth.keydir import MANIFEST, KeySet, private_name, public_name, read_key_set
from lib.auth.pem import generate_keypair, load_private_key, load_public_key
from lib.config import ServiceSettings, load_settings
from tools.locks import LockBusy, file_lock

DEFAULT_DIR = Path("var/keys/jwt")
STEPS = ("status", "init", "stage", "promote", "drop")


class Refused(RuntimeError):
    """A step that may not run now; the message is the one line to print."""


@dataclass(frozen=True, slots=True)
class Timing:
    publish_wait: float  # staged -> promotable
    window: float  # retired -> droppable (and no longer trusted)


def timing(settings: ServiceSettings) -> Timing:
    return Timing(
        publish_wait=settings.jwt_keys_reload_interval + settings.jwks_refresh_interval,
        window=settings.key_retirement_window(),
    )


def public_pem_of(private: Ed25519PrivateKey) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def _write_file(path: Path, text: str, mode: int) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        os.fchmod(handle.fileno(), mode)
        handle.write(text)
    os.replace(temp, path)


def _rows(directory: Path) -> list[dict[str, object]]:
    document = json.loads((directory / MANIFEST).read_text())
    return list(document["keys"])


def _save(directory: Path, rows: list[dict[str, object]]) -> None:
    _write_file(directory / MANIFEST, json.dumps({"keys": rows}, indent=2) + "\n", 0o644)
    read_key_set(directory, private=True)  # what the services will read: it must parse


def _new_key(directory: Path, now: float, adopt: str | None = None) -> dict[str, object]:
    """A key's files and its manifest row: a new pair, or the private key `adopt`."""
    if adopt is None:
        private_pem, public_pem = generate_keypair()
    else:
        private = load_private_key(adopt)
        private_pem, public_pem = adopt, public_pem_of(private)
    kid = key_id(load_public_key(public_pem))
    _write_file(directory / private_name(kid), private_pem, 0o600)
    _write_file(directory / public_name(kid), public_pem, 0o644)
    return {"kid": kid, "state": "next", "created_at": now, "retired_at": None}


def init(directory: Path, now: float, adopt: str | None = None) -> str:
    """A directory with one signing key: a new one, or `adopt` (the PEM a deployment signed
    with until now, JWT_PRIVATE_KEY: its tokens stay valid, the kid being the key's own)."""
    if (directory / MANIFEST).exists():
        raise Refused(f"{directory / MANIFEST} already exists")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    row = _new_key(directory, now, adopt) | {"state": "signing"}
    _save(directory, [row])
    return f"signing key {row['kid']} written to {directory}"


def stage(directory: Path, now: float) -> str:
    staged = read_key_set(directory, private=True).staged()
    if staged is not None:
        raise Refused(f"key {staged.kid} is already staged (promote it first)")
    row = _new_key(directory, now)
    _save(directory, [*_rows(directory), row])
    return f"staged {row['kid']}: published now; promote once every process has it"


def promote(directory: Path, now: float, timing: Timing) -> str:
    keys = read_key_set(directory, private=True)
    staged = keys.staged()
    if staged is None:
        raise Refused("no key is staged (run the stage step first)")
    ready = staged.created_at + timing.publish_wait
    if now < ready:
        raise Refused(
            f"key {staged.kid} was staged {now - staged.created_at:.0f} s ago; promote it "
            f"after {timing.publish_wait:g} s (in {ready - now:.0f} s) so every verifier has it"
        )
    rows = _rows(directory)
    for row in rows:
        if row["state"] == "signing":
            row.update(state="retired", retired_at=now)
        elif row["kid"] == staged.kid:
            row["state"] = "signing"
    _save(directory, rows)
    return f"{staged.kid} signs from now on; the previous key is retired"


def drop(directory: Path, now: float, timing: Timing) -> str:
    keys = read_key_set(directory, private=False)
    retired = [e for e in keys.entries if e.state == "retired"]
    if not retired:
        raise Refused("no retired key to drop")
    waiting = [e for e in retired if now < (e.retired_at or 0.0) + timing.window]
    if waiting:
        first = min(waiting, key=lambda e: e.retired_at or 0.0)
        until = (first.retired_at or 0.0) + timing.window
        raise Refused(
            f"key {first.kid} may still verify tokens for {until - now:.0f} s (access-token "
            f"life + leeway + reload: {timing.window:g} s after it stopped signing); drop it after"
        )
    gone = {e.kid for e in retired}
    _save(directory, [row for row in _rows(directory) if row["kid"] not in gone])
    for kid in gone:
        (directory / private_name(kid)).unlink(missing_ok=True)
        (directory / public_name(kid)).unlink(missing_ok=True)
    return f"dropped {', '.join(sorted(gone))}"


def status(directory: Path, now: float, timing: Timing) -> str:
    keys: KeySet = read_key_set(directory, private=False)
    lines = []
    for entry in keys.entries:
        age = f"{now - entry.created_at:.0f} s old"
        if entry.state == "retired" and entry.retired_at is not None:
            left = entry.retired_at + timing.window - now
            age += f", trusted {left:.0f} s more" if left > 0 else ", no longer trusted: drop"
        lines.append(f"{entry.state:8} {entry.kid} ({age})")
    return "\n".join(lines)


def run(step: str, directory: Path, now: float, timing: Timing, adopt: str | None = None) -> str:
    if step == "init":
        return init(directory, now, adopt)
    if step == "stage":
        return stage(directory, now)
    if step == "promote":
        return promote(directory, now, timing)
    if step == "drop":
        return drop(directory, now, timing)
    return status(directory, now, timing)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.rotate_keys", description=__doc__)
    parser.add_argument("step", choices=STEPS)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"default {DEFAULT_DIR}")
    parser.add_argument(
        "--adopt", type=Path, help="init: start from this private key PEM (JWT_PRIVATE_KEY_FILE)"
    )
    args = parser.parse_args(argv)
    settings = load_settings(ServiceSettings, "users")  # the intervals, as users reads them
    try:
        if args.step == "status":
            print(status(args.dir, time.time(), timing(settings)))
            return 0
        with file_lock("rotate-keys"):
            adopt = args.adopt.read_text() if args.adopt else None
            print(run(args.step, args.dir, time.time(), timing(settings), adopt))
    except LockBusy as exc:
        print(f"rotate-keys: {exc}", file=sys.stderr)
        return 2
    except (Refused, ValueError, OSError) as exc:
        print(f"rotate-keys: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
