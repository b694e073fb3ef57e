"""Development keys: `python -m tools.keys [--dir var/keys] [--force | --missing]`.

Writes an Ed25519 pair, `jwt_private.pem` (mode 0600) and `jwt_public.pem`, for the
users service to sign and every service to verify with, and `encryption.key` (mode 0600,
the users service's ENCRYPTION_KEY: personal id numbers), and the signing keyring
`jwt/keyring.json` whose current key is that pair's (JWT_KEYS_DIR, rotated by
`make rotate secret=jwt`, ADR 0046). Refuses to overwrite an existing key unless `--force`
(which makes personal id numbers sealed under the old key unreadable); `--missing` writes
only what is absent (what `make run` does). Production keys come from the deployment, not from here.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from lib.auth.keysources import RING
from lib.auth.tokens import generate_keypair, load_private_key
from lib.crypto import generate_key
from lib.keyring import Keyring, ed25519, write_keyring

PRIVATE_NAME = "jwt_private.pem"
PUBLIC_NAME = "jwt_public.pem"
PRIVATE_ENV = "JWT_PRIVATE_KEY_FILE"
PUBLIC_ENV = "JWT_PUBLIC_KEY_FILE"
ENCRYPTION_NAME = "encryption.key"
KEY_DIR_NAME = "jwt"  # JWT_KEYS_DIR: the signing keyring (lib/keyring.py)
ENCRYPTION_ENV = "ENCRYPTION_KEY_FILE"


def _write(path: Path, data: str, mode: int, overwrite: bool) -> None:
    """Write `data` with exactly `mode`; never clobber unless `overwrite`.

    Without `overwrite` the file is created exclusively (O_EXCL); with it, a temporary
    file of the right mode replaces the old one, so the key is never world-readable.
    """
    target = path.with_name(f".{path.name}.{os.getpid()}.tmp") if overwrite else path
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have narrowed or the caller widened it
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            fd = -1
            handle.write(data)
        if overwrite:
            os.replace(target, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        if overwrite:
            target.unlink(missing_ok=True)
        raise


def write_keys(directory: Path, force: bool = False) -> tuple[Path, Path]:
    """Write a new pair into `directory`; FileExistsError (O_EXCL) when a key exists and
    not `force`."""
    private_path, public_path = directory / PRIVATE_NAME, directory / PUBLIC_NAME
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_pem, public_pem = generate_keypair()
    _write(private_path, private_pem, 0o600, overwrite=force)
    _write(public_path, public_pem, 0o644, overwrite=force)
    return private_path, public_path


def write_encryption_key(directory: Path, force: bool = False) -> Path:
    """A new ENCRYPTION_KEY (base64 of 32 bytes) in `directory`; FileExistsError unless `force`."""
    path = directory / ENCRYPTION_NAME
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write(path, generate_key() + "\n", 0o600, overwrite=force)
    return path


def signing_keyring(directory: Path, private_pem: str) -> str:
    """The signing keyring `directory/keyring.json` of one key, current: `private_pem`."""
    pair = ed25519(load_private_key(private_pem), now=time.time())
    path = write_keyring(directory / RING, Keyring((pair,)))
    return f"signing key {pair.kid} written to {path}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.keys",
        description="Write a development Ed25519 JWT key pair and an ENCRYPTION_KEY file.",
    )
    parser.add_argument("--dir", type=Path, default=Path("var/keys"), help="default var/keys")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--force", action="store_true", help="replace existing keys")
    mode.add_argument("--missing", action="store_true", help="write only the absent keys")
    args = parser.parse_args(argv)
    private_path, public_path = args.dir / PRIVATE_NAME, args.dir / PUBLIC_NAME
    encryption_path = args.dir / ENCRYPTION_NAME
    want_pair = not (args.missing and private_path.exists() and public_path.exists())
    want_encryption = not (args.missing and encryption_path.exists())
    wanted = ([private_path, public_path] if want_pair else []) + (
        [encryption_path] if want_encryption else []
    )
    existing = [str(p) for p in wanted if p.exists()]
    if existing and not args.force:  # nothing is written when anything would be clobbered
        verb = "exists" if len(existing) == 1 else "exist"
        print(f"keys: {' and '.join(existing)} already {verb} (--force replaces)", file=sys.stderr)
        return 1
    try:
        if want_pair:
            write_keys(args.dir, force=args.force)
            print(f"wrote {private_path} (mode 0600)")
            print(f"wrote {public_path}")
        if want_encryption:
            write_encryption_key(args.dir, force=args.force)
            print(f"wrote {encryption_path} (mode 0600)")
    except OSError as exc:
        print(f"keys: {exc}", file=sys.stderr)
        return 1
    key_dir = args.dir / KEY_DIR_NAME
    if not (key_dir / RING).exists():
        # the pair's private key signs first: tokens of a run before stay valid
        print(signing_keyring(key_dir, private_path.read_text()))
    elif args.force:
        print(f"keys: {key_dir} kept (make rotate secret=jwt replaces its key without a logout)")
    print("for .env:")
    print(f"{PRIVATE_ENV}={private_path}")
    print(f"{PUBLIC_ENV}={public_path}")
    print(f"{ENCRYPTION_ENV}={encryption_path}")
    print(f"USERS_JWT_KEYS_DIR={key_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
