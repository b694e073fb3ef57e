"""How much the reliability suite does: bounded inside `make test`, more under
`make test-reliability` (RELIABILITY_FULL=1)."""

from __future__ import annotations

import os

FULL = os.environ.get("RELIABILITY_FULL") == "1"

# schemathesis: generated requests per operation and per credential set (fixed count)
EXAMPLES = 200 if FULL else 12
# stateful schemathesis (following the documents' links): scenarios per service, and the
# longest chain of calls in one
SCENARIOS = 100 if FULL else 8
SCENARIO_STEPS = 8
# one load phase (wrk, rate limiter): <= 10 s in CI, 60 s in the full run
LOAD_SECONDS = 60.0 if FULL else 5.0
# writers of the fault tests (each loops creating rows)
WRITERS = 8
