"""The points service's domain counter (lib.metrics.Facts); `create_app` starts it at 0."""

from __future__ import annotations

from lib.metrics import Facts

AWARDED = Facts(
    "points_awarded_total",
    "Points added to balances (the sum of positive deltas; a replayed key adds nothing).",
)
ALL = (AWARDED,)
