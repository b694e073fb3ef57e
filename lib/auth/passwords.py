"""Password hashing with argon2id.

Cost parameters come from the environment (cheap in tests; docs/architecture.md, "Ports
and settings"):
ARGON2_TIME_COST (default 3), ARGON2_MEMORY_COST in KiB (default 65536),
ARGON2_PARALLELISM (default 4). They are read once, on first use.
"""

from __future__ import annotations

import os
from functools import cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import Argon2Error

_DEFAULTS = {"ARGON2_TIME_COST": 3, "ARGON2_MEMORY_COST": 65536, "ARGON2_PARALLELISM": 4}


def _setting(name: str) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return _DEFAULTS[name]
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}")
    return value


@cache
def hasher() -> PasswordHasher:
    """The process-wide argon2id hasher, configured from ARGON2_* on first call."""
    return PasswordHasher(
        time_cost=_setting("ARGON2_TIME_COST"),
        memory_cost=_setting("ARGON2_MEMORY_COST"),
        parallelism=_setting("ARGON2_PARALLELISM"),
        type=Type.ID,
    )


def hash_password(password: str) -> str:
    """An argon2id PHC string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`)."""
    return hasher().hash(password)


def verify_password(hash: str, password: str) -> bool:
    """True when `password` matches `hash`; False on a mismatch or a malformed hash."""
    try:
        return hasher().verify(hash, password)
    except (Argon2Error, ValueError):  # ValueError: InvalidHashError, non-ASCII hash
        return False
