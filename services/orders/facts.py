"""The orders service's domain counters (lib.db.facts.Facts), the marketplace funnel: each
counts a committed fact once (an Idempotency-Key replay counts nothing), labelled by
bounded values only; `create_app` starts them at 0."""

from __future__ import annotations

from lib.db.facts import Facts

ORDERS = Facts("orders_created_total", "Orders created.")
OFFERS_MADE = Facts("orders_offers_made_total", "Offers made by providers.")
OFFERS_ACCEPTED = Facts(
    "orders_offers_accepted_total", "Offers accepted by customers (each creates a job)."
)
JOBS_COMPLETED = Facts(
    "orders_jobs_completed_total", "Jobs completed by their provider (each awards points)."
)
JOBS_CANCELLED = Facts(
    "orders_jobs_cancelled_total",
    "Jobs cancelled, by the role of who cancelled (the order is OPEN again).",
    role=("customer", "provider"),
)
REVIEWS = Facts(
    "orders_reviews_total",
    "Reviews of completed jobs, by rating (0.5 to 5.0 in steps of 0.5).",
    rating=tuple(f"{half / 2:.1f}" for half in range(1, 11)),
)
ALL = (ORDERS, OFFERS_MADE, OFFERS_ACCEPTED, JOBS_COMPLETED, JOBS_CANCELLED, REVIEWS)
