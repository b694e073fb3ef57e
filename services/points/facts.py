"""The points service's domain counter (lib.db.facts.Facts); `create_app` starts it at 0."""

from __future__ import annotations

from lib.db.facts import Facts

AWARDED = Facts(
    "points_awarded_total",
    "Points added to balances (the sum of positive deltas; a replayed key adds nothing).",
)
ALL = (AWARDED,)
