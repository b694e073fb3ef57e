"""Development JWT keys: `python -m tools.keys [--dir var/keys] [--force]`.

Writes an Ed25519 pair, `jwt_private.pem` (mode 0600) and `jwt_public.pem`, for the
users service to sign and every service to verify with. Refuses to overwrite an
existing key unless `--force`. Production keys come from the deployment, not from here.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from lib.auth.tokens import generate_keypair

PRIVATE_NAME = "jwt_private.pem"
PUBLIC_NAME = "jwt_public.pem"
PRIVATE_ENV = "JWT_PRIVATE_KEY_FILE"
PUBLIC_ENV = "JWT_PUBLIC_KEY_FILE"


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
    """Write a new pair into `directory`; FileExistsError when a key exists and not `force`."""
    private_path, public_path = directory / PRIVATE_NAME, directory / PUBLIC_NAME
    if not force:
        existing = [str(p) for p in (private_path, public_path) if p.exists()]
        if existing:
            verb = "exists" if len(existing) == 1 else "exist"
            raise FileExistsError(f"{' and '.join(existing)} already {verb} (--force replaces)")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_pem, public_pem = generate_keypair()
    _write(private_path, private_pem, 0o600, overwrite=force)
    _write(public_path, public_pem, 0o644, overwrite=force)
    return private_path, public_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.keys", description="Write a development Ed25519 JWT key pair."
    )
    parser.add_argument("--dir", type=Path, default=Path("var/keys"), help="default var/keys")
    parser.add_argument("--force", action="store_true", help="replace existing keys")
    args = parser.parse_args(argv)
    try:
        private_path, public_path = write_keys(args.dir, force=args.force)
    except OSError as exc:  # FileExistsError included
        print(f"keys: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {private_path} (mode 0600)")
    print(f"wrote {public_path}")
    print("for .env:")
    print(f"{PRIVATE_ENV}={private_path}")
    print(f"{PUBLIC_ENV}={public_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
