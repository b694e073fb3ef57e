"""One factor for every bound the tests, and the tools they call, wait under.

A bound (a server open within START_TIMEOUT, a service healthy within 20 s, a Patroni
primary within 90 s, the mutation sample within 900 s) is a ceiling measured on an idle
or lightly loaded machine: `scaled(seconds)` is that figure times `FIXUP_TIME_SCALE`
(default 3), so a 2-core machine at load 10 still passes, and a slower one passes with a
larger factor instead of an edit to each bound. Raising a ceiling costs nothing when things
pass; only a hang takes longer to fail. What must be immediate (a refusal, a request held
to a configured timeout) is not scaled: a configured timeout is a behaviour under test, the
margin a test adds on top of it for a loaded machine is a bound. Standard library only,
like tools/local/local_servers.py, which uses it before .venv exists.
"""

from __future__ import annotations

import os

VARIABLE = "FIXUP_TIME_SCALE"
DEFAULT = 3.0


def time_scale() -> float:
    """FIXUP_TIME_SCALE, else DEFAULT; a value under 1 or not a number is refused (a bound
    under the one measured would fail runs that are fine)."""
    raw = os.environ.get(VARIABLE, "").strip()
    if not raw:
        return DEFAULT
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{VARIABLE}={raw!r} is not a number") from None
    if not value >= 1.0:  # also refuses nan
        raise ValueError(f"{VARIABLE}={raw!r}: the factor is 1 or more")
    return value


def scaled(seconds: float) -> float:
    """`seconds`, a bound measured on an unloaded machine, times the factor."""
    return seconds * time_scale()
