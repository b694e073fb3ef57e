"""Query strings in logs, with the values of secret-carrying parameters replaced.

One list for every log that writes a query string: the services' access log
(lib/http/middleware.py) and NGINX's (nginx/conf.d/00-maps.conf, which tools/deploy/nginx.py
renders from `nginx_pattern`). `LOG_REDACT_PARAMS` (comma-separated) adds names to the
built-in ones. A parameter whose name is percent-encoded is redacted too: it may spell a
secret name the way a server decodes it (`%74oken` is `token`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

SECRET_PARAMS = ("token", "access_token", "refresh_token", "code", "sig", "password")
REDACTED = "[REDACTED]"
PARAM_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}\Z")


def secret_params(extra: Iterable[str] = ()) -> frozenset[str]:
    """The built-in names plus `extra`, lower-cased (matching ignores case)."""
    names = [*SECRET_PARAMS, *(name.strip() for name in extra if name.strip())]
    bad = [name for name in names if not PARAM_NAME.match(name)]
    if bad:
        raise ValueError(f"not a parameter name: {', '.join(bad)} (letters, digits, _ . -)")
    return frozenset(name.lower() for name in names)


def redact_query(query: str, names: frozenset[str]) -> str:
    """`query` (raw, undecoded) with the value of every parameter named in `names` replaced."""
    if not query:
        return ""
    parts = query.split("&")
    for i, part in enumerate(parts):
        name, eq, _ = part.partition("=")
        if eq and ("%" in name or name.lower() in names):
            parts[i] = f"{name}={REDACTED}"
    return "&".join(parts)


def nginx_pattern(names: frozenset[str]) -> str:
    """The alternation NGINX's redaction maps match parameter names with (`~*`: any case)."""
    return "|".join(re.escape(name) for name in sorted(names))
