"""The one backoff of lib: full-jitter exponential delays.

Before retry n (0-based) wait a random `[0, min(cap, first * 2**n))`: the bound doubles up
to `cap`, and the jitter spreads callers that failed together so they do not retry
together. Every retry loop in lib waits by it: calls between services
(lib.resilience.retry), opening a pool (lib.db.connecting), the pub/sub reconnect
(lib.pubsub) and a relay's failed rows (lib.relay).
"""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff(n: int, first: float, cap: float, rng: Callable[[], float] | None = None) -> float:
    """Seconds to wait before retry `n` (0-based); `rng` draws in [0, 1) (random.random)."""
    return (rng or random.random)() * min(cap, first * 2.0 ** min(n, 60))
